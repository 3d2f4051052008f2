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

Two options of ``ckpt`` (``ModelSpec``): ``half`` runs the deploy graph in fp16 (CUDA only:
frames and LUT weights are cast to fp16 on the way in and the output back to fp32; on the CPU
it is refused, fp16 convolutions there are slow or missing); ``tile`` runs the U-Net in tiles
for frames that do not fit in memory (:mod:`vqe.inference.tiles`).

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
from vqe.inference.tiles import TiledBackend, tiled
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
    half: bool = False  # fp16 deploy graph (``ckpt`` on CUDA only)
    tile: int | None = None  # run the U-Net in tiles of tile×tile pixels (``ckpt`` only)
    tile_overlap: int = 32  # pixels of context around each tile

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.kind != "ckpt" and (self.half or self.tile is not None):
            raise ValueError(f"--half and --tile work with --ckpt only, not --{self.kind}")
        if self.tile is not None and (self.tile < 1 or self.tile_overlap < 0):
            raise ValueError(
                f"--tile must be ≥ 1 and --tile-overlap ≥ 0, got {self.tile} and "
                f"{self.tile_overlap}"
            )


class TorchBackend:
    """An enhancer's deploy graph in PyTorch, its weights channels-last (720p batches
    of 4 on 2 CPU threads: 1.65× the NCHW speed, the same values to 1e-7)."""

    def __init__(
        self,
        enhancer: Enhancer,
        device: torch.device,
        description: str = "PyTorch",
        half: bool = False,
    ) -> None:
        self.model = build_deploy_model(enhancer).to(device, memory_format=torch.channels_last)
        # fp16 weights; frames and LUT weights are cast on the way in, outputs back to fp32, so
        # the stream around the model (smoothing, uint8 conversion) is the same as in fp32.
        self.dtype = torch.float16 if half else torch.float32
        self.model.to(self.dtype)
        if self.model.lut is not None:
            # Stream frames are decoded 8-bit video: where the fused CPU lookup is not built (or
            # on a GPU), the exact, faster red-level grid_sample lookup applies.
            self.model.lut.eight_bit_frames = True
        self.device = device
        self.has_lut = self.model.lut is not None
        self.description = f"{description} on {device}{', fp16' if half else ''}"

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        assert self.model.lut is not None
        return self.model.lut.predict_weights(frames.to(self.dtype)).float()

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # NCHW batches as decoded: the LUT looks them up in NCHW, the U-Net gets NHWC.
        enhanced = self.model.enhance_with_weights(frames.to(self.dtype), weights.to(self.dtype))
        return enhanced.float()

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model(frames.to(self.dtype)).float()

    def apply_lut(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The LUT stage alone on whole frames (kept in the model's dtype and layout)."""
        return self.model.apply_lut(frames.to(self.dtype), weights.to(self.dtype))

    def finish(self, frames: torch.Tensor) -> torch.Tensor:
        """The U-Net and clamp on frames from :meth:`apply_lut` (or a tile of them)."""
        return self.model.finish(frames.to(self.dtype)).float()


class LutFirstTiledBackend(TiledBackend):
    """Tiles for the U-Net only: the LUT stage runs on the whole frame first.

    :class:`~vqe.inference.tiles.TiledBackend` runs the whole enhancer per tile, exact while
    the LUT stage is per pixel; a stage with a gain map (``gain_grid``) multiplies by a field
    that spans the frame, which a tile alone would stretch over itself. The LUT stage is per
    pixel in memory (one frame-sized buffer), so only the U-Net needs the tiles anyway."""

    inner: TorchBackend

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        looked_up = self.inner.apply_lut(frames, weights)
        return tiled(self.inner.finish, looked_up, self.tile, self.overlap)


def tiled_backend(backend: TorchBackend, tile: int, overlap: int) -> TiledBackend:
    """``backend`` run in tiles: the LUT stage (if any) on whole frames, the U-Net in tiles."""
    if backend.has_lut:
        return LutFirstTiledBackend(backend, tile, overlap)
    return TiledBackend(backend, tile, overlap)


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
        device = resolve_device(spec.device)
        if spec.half and device.type != "cuda":
            raise ValueError(f"--half needs a CUDA device (this run is on {device}); drop --half")
        enhancer, _ = enhancer_from_checkpoint(spec.path, key="checkpoint")
        backend = TorchBackend(enhancer, device, f"PyTorch {spec.path.name}", spec.half)
        if spec.tile is None:
            return backend
        return tiled_backend(backend, spec.tile, spec.tile_overlap)
    if spec.kind == "onnx":
        return OnnxBackend(spec.path)
    return CoreMLBackend(spec.path)
