"""The models video enhancement can run: a checkpoint in PyTorch, or an exported ONNX model.

Each backend takes N×3×H×W RGB [0, 1] batches of decoded 8-bit frames (values k / 255) and
offers the three calls the stream needs (:class:`FrameEnhancer`): the LUT weights of each frame,
enhancement with given (smoothed) weights, and plain enhancement.

* ``ckpt`` — a ``train_vqe.py`` checkpoint, run as its deploy graph (fused convs, the same graph
  that is exported) on ``device`` (``auto``: CUDA when present, else the CPU).
* ``onnx`` — ``X.onnx`` from ``export_coreml.py --format onnx``, run with onnxruntime on the
  CPU, one frame at a time (the graph's input is fixed at 1×3×H×W: videos must have that size).
  Smoothing uses the stage graphs written beside it (``X.lut_weights.onnx``,
  ``X.with_weights.onnx``); without them the weights cannot be smoothed, and it says so.
* ``mlpackage`` — a CoreML package runs only on macOS (coremltools' predictor is macOS-only);
  there it runs frame by frame without smoothing (its graph takes no weights). Elsewhere loading
  one is an error that says to use the checkpoint or the ONNX model.

:func:`load_backend` is cached per process, so worker processes load their model once.
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from vqe.devices import resolve_device
from vqe.host_memory import keep_freed_memory
from vqe.models.deploy import build_deploy_model
from vqe.models.enhancer import Enhancer
from vqe.models.loading import enhancer_from_checkpoint

log = logging.getLogger(__name__)

MODEL_KINDS = ("ckpt", "onnx", "mlpackage")


class FrameEnhancer(Protocol):
    description: str
    device: torch.device  # where input batches should be
    has_lut: bool  # the LUT weights can be read and given (smoothing possible)

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor: ...

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...

    def enhance(self, frames: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load (picklable, so worker processes can load it themselves)."""

    kind: Literal["ckpt", "onnx", "mlpackage"]
    path: Path
    device: str = "auto"  # torch device for ``ckpt``

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")


class TorchBackend:
    """An enhancer's deploy graph in PyTorch, its weights channels-last (720p batches
    of 4 on 2 CPU threads: 1.65× the NCHW speed, the same values to 1e-7)."""

    def __init__(self, enhancer: Enhancer, device: torch.device, description: str = "PyTorch"):
        self.model = build_deploy_model(enhancer).to(device, memory_format=torch.channels_last)
        if self.model.lut is not None:
            # Stream frames are decoded 8-bit video: where the fused CPU lookup is not built (or
            # on a GPU), the exact, faster red-level grid_sample lookup applies.
            self.model.lut.eight_bit_frames = True
        self.device = device
        self.has_lut = self.model.lut is not None
        self.description = f"{description} on {device}"

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        assert self.model.lut is not None
        return self.model.lut.predict_weights(frames)

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # NCHW batches as decoded: the LUT looks them up in NCHW, the U-Net gets NHWC.
        return self.model.enhance_with_weights(frames, weights)

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model(frames)


class OnnxBackend:
    """``X.onnx`` (and its stage graphs, when present) in onnxruntime on the CPU."""

    def __init__(self, path: Path) -> None:
        from vqe.export.metadata import INPUT_NAME
        from vqe.export.onnx import session, stage_paths

        if not path.is_file():
            raise FileNotFoundError(f"--onnx {path}: no such file")
        try:
            self.full = session(path)
            stages = stage_paths(path)
            present = [stage.is_file() for stage in stages]
            self.lut_weights = session(stages[0]) if all(present) else None
            self.with_weights = session(stages[1]) if all(present) else None
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"--onnx {path}: cannot be loaded by onnxruntime ({error})") from error
        shape = self.full.get_inputs()[0].shape
        names = [item.name for item in self.full.get_inputs()]
        if names != [INPUT_NAME] or len(shape) != 4 or shape[:2] != [1, 3]:
            raise ValueError(
                f"--onnx {path}: expected one input '{INPUT_NAME}' of shape 1×3×H×W, got "
                f"{names} {shape}; export with export_coreml.py --format onnx"
            )
        self.height, self.width = int(shape[2]), int(shape[3])
        self.path = path
        self.device = torch.device("cpu")
        self.has_lut = self.lut_weights is not None
        self.description = f"onnxruntime (CPU) {path.name}, {self.width}×{self.height}"
        if not self.has_lut:
            log.warning(
                "%s / %s not beside %s: the LUT weights cannot be read, so they are not "
                "smoothed over time", stages[0].name, stages[1].name, path,
            )

    def _run(self, session, frames: torch.Tensor, weights: torch.Tensor | None = None):
        from vqe.export.metadata import INPUT_NAME
        from vqe.export.onnx import WEIGHTS_NAME

        if tuple(frames.shape[-2:]) != (self.height, self.width):
            raise ValueError(
                f"frames are {frames.shape[-1]}×{frames.shape[-2]} but the ONNX model {self.path} "
                f"takes {self.width}×{self.height}; export it with --height "
                f"{frames.shape[-2]} --width {frames.shape[-1]}"
            )
        outputs = []
        for index in range(frames.shape[0]):  # the graph's batch is fixed at 1
            feeds = {INPUT_NAME: frames[index : index + 1].numpy().astype(np.float32)}
            if weights is not None:
                feeds[WEIGHTS_NAME] = weights[index : index + 1].numpy().astype(np.float32)
            outputs.append(torch.from_numpy(session.run(None, feeds)[0]))
        return torch.cat(outputs)

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        return self._run(self.lut_weights, frames)

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self._run(self.with_weights, frames, weights)

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        return self._run(self.full, frames)


class CoreMLBackend:
    """A ``.mlpackage`` through coremltools' predictor (macOS only; untested on Linux CI)."""

    def __init__(self, path: Path) -> None:
        if platform.system() != "Darwin":
            raise RuntimeError(
                f"--mlpackage {path}: CoreML packages run only on macOS (this is "
                f"{platform.system()}); use --ckpt with the checkpoint, or --onnx with "
                "export_coreml.py --format onnx"
            )
        import coremltools as ct

        if not path.is_dir():
            raise FileNotFoundError(f"--mlpackage {path}: no such package folder")
        self.model = ct.models.MLModel(str(path))
        self.device = torch.device("cpu")
        self.has_lut = False  # the package takes no weights: no smoothing
        self.description = f"CoreML {path.name}"

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a CoreML package does not expose its LUT weights")

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a CoreML package takes no LUT weights")

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        from vqe.export.metadata import INPUT_NAME, OUTPUT_NAME

        outputs = []
        for frame in frames:
            feeds = {INPUT_NAME: frame[None].numpy().astype(np.float16)}
            result = self.model.predict(feeds)[OUTPUT_NAME]
            outputs.append(torch.from_numpy(np.asarray(result, dtype=np.float32)))
        return torch.cat(outputs)


@functools.lru_cache(maxsize=2)
def load_backend(spec: ModelSpec) -> FrameEnhancer:
    """Load the model ``spec`` names (once per process)."""
    if spec.kind == "ckpt":
        # The process now enhances frame after frame: each batch reuses the last one's pages.
        keep_freed_memory()
        enhancer, _ = enhancer_from_checkpoint(spec.path, key="checkpoint")
        return TorchBackend(enhancer, resolve_device(spec.device), f"PyTorch {spec.path.name}")
    if spec.kind == "onnx":
        return OnnxBackend(spec.path)
    return CoreMLBackend(spec.path)
