"""What every exported model records and checks, whatever the format (CoreML, ONNX).

An export starts from an :class:`~vqe.models.enhancer.Enhancer` plus a :class:`ModelSource`
(where it came from: the checkpoint file and the model config). Before converting, the
enhancer's deploy graph is held to the challenge budget at 1280×720 (:func:`budget_report`);
the package then carries :func:`export_metadata` as string key/value pairs, so a shipped file
says which checkpoint, config, MAC count and vqe version made it.

Frames are the vqe convention (:mod:`vqe.conventions`): RGB float in [0, 1], here 1×3×H×W
(both formats take one frame of a fixed size).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vqe.macs import MacReport, check_budget, count_macs
from vqe.models.enhancer import Enhancer
from vqe.models.loading import compose_preset, enhancer_from_checkpoint
from vqe.output_paths import check_not_an_input, check_writable

#: Names of the exported graph's input and output, in every format.
INPUT_NAME = "frame"
OUTPUT_NAME = "enhanced"

#: The value range and layout, written into the packages' descriptions.
INPUT_DESCRIPTION = "RGB frame, float in [0, 1] (0 black, 1 full scale), shape 1×3×H×W"
OUTPUT_DESCRIPTION = "enhanced RGB frame, float in [0, 1], same shape as the input"

#: Metadata keys (prefixed so they do not collide with the converters' own keys).
METADATA_PREFIX = "vqe."


@dataclass(frozen=True)
class ModelSource:
    """Where an exported enhancer came from."""

    checkpoint: str  # path of the checkpoint file, or "preset:<name>" for an untrained preset
    config: str  # the model config (``model_vqe``) as YAML text
    checkpoint_sha256: str = ""  # of the checkpoint file; empty for a preset


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def preset_source(name: str) -> ModelSource:
    """The source record of an untrained ``configs/model_vqe/<name>.yaml`` preset (its config
    composed and resolved, as a checkpoint records it)."""
    from omegaconf import OmegaConf

    return ModelSource(
        checkpoint=f"preset:{name}", config=OmegaConf.to_yaml(compose_preset(name), resolve=True)
    )


def load_checkpoint(path: str | Path) -> tuple[Enhancer, ModelSource]:
    """The enhancer a ``train_vqe.py`` checkpoint holds (eval mode) and its source record.

    Reading is :func:`vqe.models.loading.enhancer_from_checkpoint`'s: FileNotFoundError for
    a missing file, CheckpointError (a ValueError naming the file) for one it cannot read or
    that holds something other than an enhancer checkpoint.
    """
    from omegaconf import OmegaConf

    path = Path(path).expanduser()
    enhancer, model_config = enhancer_from_checkpoint(path, key="checkpoint")
    source = ModelSource(
        checkpoint=str(path.resolve()),
        config=OmegaConf.to_yaml(OmegaConf.create(model_config)),
        checkpoint_sha256=file_sha256(path),
    )
    return enhancer, source


def vqe_version() -> str:
    try:
        return importlib.metadata.version("vqe")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def budget_report(deploy: nn.Module, allow_over_budget: bool) -> MacReport:
    """MACs of a deploy graph at 1280×720; raises MacBudgetError over 20 GMAC unless allowed."""
    return check_budget(count_macs(deploy), allow_over=allow_over_budget)


def parameter_count(deploy: nn.Module) -> int:
    """Stored numbers of a deploy graph (what ships: fused convs, the LUT basis as atlases)."""
    return sum(tensor.numel() for tensor in [*deploy.parameters(), *deploy.buffers()])


def export_metadata(
    source: ModelSource,
    macs_720p: int,
    parameters: int,
    precision: str,
    height: int,
    width: int,
) -> dict[str, str]:
    """String key/value pairs stored in every exported package."""
    values = {
        "source_checkpoint": source.checkpoint,
        "source_checkpoint_sha256": source.checkpoint_sha256,
        "config": source.config,
        "macs_per_1280x720_frame": str(macs_720p),
        "parameters": str(parameters),
        "precision": precision,
        "input_shape": f"1x3x{height}x{width}",
        "value_range": "RGB float in [0, 1] in and out",
        "vqe_version": vqe_version(),
    }
    return {METADATA_PREFIX + key: value for key, value in values.items()}


def check_output_path(path: Path, overwrite: bool, source: ModelSource | None = None) -> None:
    """Refuse to replace an existing export unless asked to, to write over the checkpoint it is
    made from, or to start one whose folder cannot be written (before the conversion)."""
    if source is not None and not source.checkpoint.startswith("preset:"):
        check_not_an_input(path, "--out", {"checkpoint": source.checkpoint})
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path}: already exists; pass --overwrite to replace it or choose another --out"
        )
    check_writable(path, "--out")


def replace_output(built: Path, final: Path) -> None:
    """Move a finished export (file or package folder) into place, replacing the old one."""
    if final.is_dir():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    built.rename(final)


def size_bytes(path: Path) -> int:
    """Size of a file, or of every file in a package folder."""
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size
