"""Enhance a folder of videos for a submission.

    python -m vqe.enhance --ckpt CKPT --dir_in DIR --dir_out DIR
        [--batch-size 4] [--smoothing-alpha 0.1 | --no-smoothing] [--device auto]
        [--workers 1] [--overwrite] [--no-progress]
    python -m vqe.enhance --onnx MODEL.onnx --dir_in DIR --dir_out DIR …

Every ``*.mp4`` directly in ``--dir_in`` is decoded with PyAV, enhanced in batches (streaming;
memory bounded by one batch, :mod:`vqe.enhance_stream`) with the LUT weights smoothed over time,
and encoded with the official settings — H.264, yuv420p, CRF 18, 30 fps; inputs at another rate
are resampled to 30 fps first like the official frame extraction (``--fps``) — under **the same
file name** in ``--dir_out``. That is the submission layout:
``dir_out/video_XXXX_x.mp4`` for each ``dir_in/video_XXXX_x.mp4``. Files that are not mp4 are
listed as ignored. The input's audio track is copied unchanged into the output; an odd frame
size (which yuv420p cannot hold) is encoded as yuv444p at the same size; an input that decodes
to fewer frames than its container declares (a truncated copy) is enhanced as far as it goes.
Each of these, and audio that had to be dropped, is listed under ``notes`` in the summary,
naming the file.

Batch behaviour (:mod:`vqe.folder_jobs`): a progress bar over videos and one per video (frames);
an existing output is skipped unless ``--overwrite``; outputs are written under a temporary
name and renamed when complete; a video that fails (corrupt, wrong size for an ONNX model) is
reported and the others still finish; the exit status is then 1. A model that cannot be loaded
(missing or foreign checkpoint) stops the run before any video, also with status 1; bad
arguments give 2.

Models (:mod:`vqe.enhance_backends`): ``--ckpt`` runs the checkpoint's deploy graph in PyTorch on
``--device`` (``auto``: CUDA when present); ``--onnx`` runs an exported ONNX model with
onnxruntime; ``--mlpackage`` runs only on macOS. ``--workers`` > 1 runs videos in parallel
processes, each loading the model (useful on a many-core CPU; keep 1 on a GPU).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from vqe.enhance_backends import ModelSpec, load_backend
from vqe.enhance_stream import (
    DEFAULT_ALPHA,
    DEFAULT_BATCH_SIZE,
    EnhanceSettings,
    enhance_job,
)
from vqe.folder_jobs import FolderReport, process_folder
from vqe.video import OFFICIAL_FPS, parse_fps


def enhance_folder(
    dir_in: str | Path,
    dir_out: str | Path,
    spec: ModelSpec,
    settings: EnhanceSettings | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> FolderReport:
    """Enhance every mp4 of ``dir_in`` into ``dir_out`` (same names); see the module doc.

    Raises (before touching any video) when the model cannot be loaded or the folders are bad.
    """
    load_backend(spec)  # fail early on a bad model; also loads it for workers=1
    # Per-video bars from parallel processes would garble each other.
    settings = settings if settings is not None else EnhanceSettings()
    job_settings = settings if workers == 1 else replace(settings, progress=False)
    return process_folder(
        dir_in,
        dir_out,
        partial(enhance_job, spec=spec, settings=job_settings),
        workers=workers,
        overwrite=overwrite,
        description="enhance",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqe.enhance",
        description="Enhance every mp4 of a folder (submission layout: same file names).",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--ckpt", type=Path, help="a train_vqe.py checkpoint (PyTorch)")
    model.add_argument("--onnx", type=Path, help="an export_coreml.py --format onnx model")
    model.add_argument("--mlpackage", type=Path, help="a CoreML package (macOS only)")
    parser.add_argument("--dir_in", type=Path, required=True, help="folder of input .mp4 videos")
    parser.add_argument("--dir_out", type=Path, required=True, help="folder for enhanced videos")
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
        help=f"frames per model call (default {DEFAULT_BATCH_SIZE})",
    )  # fmt: skip
    parser.add_argument(
        "--smoothing-alpha", type=float, default=DEFAULT_ALPHA,
        help="weight of the newest frame in the LUT-weight moving average, in (0, 1]; "
        f"smaller is smoother (default {DEFAULT_ALPHA})",
    )  # fmt: skip
    parser.add_argument(
        "--no-smoothing", action="store_true", help="use each frame's own LUT weights"
    )
    parser.add_argument(
        "--device", default="auto", help="torch device for --ckpt: auto (default), cpu, cuda, …"
    )
    parser.add_argument(
        "--fps", type=parse_fps, default=OFFICIAL_FPS,
        help=f"resample inputs to this rate before enhancing (default {OFFICIAL_FPS}, the "
        "official extraction rate, so outputs keep the input's duration); 'none' keeps every "
        "decoded frame one for one",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no per-video progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be ≥ 1, got {args.workers}")
    try:
        settings = EnhanceSettings(
            batch_size=args.batch_size,
            smoothing=not args.no_smoothing,
            alpha=args.smoothing_alpha,
            progress=not args.no_progress,
            fps=args.fps,
        )
    except ValueError as error:
        parser.error(str(error))
    kind = "ckpt" if args.ckpt else "onnx" if args.onnx else "mlpackage"
    spec = ModelSpec(kind, args.ckpt or args.onnx or args.mlpackage, args.device)
    try:
        report = enhance_folder(
            args.dir_in, args.dir_out, spec, settings, args.workers, args.overwrite
        )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
