"""Throughput of the dataset builder (video → PNG frames + index) for several worker counts.

    vqe bench-build-throughput [--videos 12] [--workers 1 2] [--out DIR]
        [--source DIR | --demo] [--width 320 --height 180] [--frames 40] [--repeats 1]

By default it writes ``--videos`` demo-like clips (pans and zooms across the photographs of
:mod:`vqe.dataprep.demo`, 320×180 like the demo set): half of them real pairs at 30 fps, half
unsupervised inputs at 20 fps, which the builder resamples to 30 fps. ``--source`` takes an
existing dataset in the official layout instead, ``--demo`` the demo set itself. Every run builds
into a fresh folder, so nothing is reused; the time includes forking the worker processes, but the
one-off start of the fork server (the first pool of a process) is timed apart on a tiny warm-up.

Throughput is PNG frames written (inputs and targets) per second of wall time. The figures are
printed and saved to ``--out`` (default ``outputs/benchmarks/``) as ``build_throughput.json`` and
a bar chart ``build_throughput.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqe.conventions import tensor_to_rgb_uint8
from vqe.data.degradations import image_to_tensor
from vqe.dataprep.build import build_dataset
from vqe.video import write_video

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "build_throughput"
REAL_FPS, WEBCAM_FPS = 30, 20  # the demo's real pairs and unsupervised clips


def make_clips(
    root: Path, videos: int, width: int, height: int, frames: int, seed: int = 0
) -> Path:
    """Write ``videos`` demo-like clips in the official layout under ``root/train``."""
    from vqe.dataprep.demo import (  # the demo set's clip maker
        PHOTOS,
        load_photo,
        pan_zoom_clip,
    )

    rng = np.random.default_rng(seed)
    photos = sorted(PHOTOS)
    for index in range(videos):
        clip = pan_zoom_clip(load_photo(photos[index % len(photos)]), frames, width, height, rng)
        images = [tensor_to_rgb_uint8(image_to_tensor(frame)) for frame in clip]
        name = f"video_{index + 1:04d}"
        if index % 2 == 0:
            folder = root / "train/supervised/real"
            write_video(folder / f"{name}_x.mp4", images, fps=REAL_FPS)
            write_video(folder / f"{name}_y.mp4", images[::-1], fps=REAL_FPS)
        else:
            write_video(root / "train/unsupervised" / f"{name}_x.mp4", images, fps=WEBCAM_FPS)
    return root


def measure(source: Path, workers: int, scratch: Path) -> dict:
    """Build ``source`` into a fresh folder with ``workers`` processes; returns the figures."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"workers-{workers}-", dir=scratch))
    report = build_dataset(source, out_dir=out_dir, workers=workers, progress=False)
    if report.failed:
        raise RuntimeError(f"building {source} failed:\n{report.failure_list()}")
    videos = sum(counts.videos for counts in report.counts.values())
    return {
        "workers": workers,
        "seconds": report.seconds,
        "videos": videos,
        "frames_written": report.frames_written,
        "frames_per_s": report.frames_written / report.seconds,
    }


def plot(results: list[dict], title: str, path: Path) -> None:
    # Imported here: worker processes import this module again and need no matplotlib.
    import matplotlib

    matplotlib.use("Agg")  # file output only, no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    labels = [str(result["workers"]) for result in results]
    rates = [result["frames_per_s"] for result in results]
    bars = axes.bar(labels, rates, color="#4878a8")
    axes.bar_label(bars, fmt="%.0f")
    axes.set_ylim(0, max(rates) * 1.15)  # room for the labels
    axes.set_xlabel("worker processes")
    axes.set_ylabel("PNG frames / s")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe bench-build-throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--videos", type=int, default=12, help="demo-like clips to make (default 12)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"result folder (default {DEFAULT_OUT})"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--source", type=Path, help="benchmark on this dataset (official layout)")
    source.add_argument(
        "--demo", action="store_true", help="benchmark on the demo set (vqe.dataprep.demo)"
    )
    parser.add_argument(
        "--width", type=int, default=320, help="width of the made clips (default 320)"
    )
    parser.add_argument(
        "--height", type=int, default=180, help="height of the made clips (default 180)"
    )
    parser.add_argument("--frames", type=int, default=40, help="frames per made clip (default 40)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per worker count; the median is kept"
    )
    args = parser.parse_args(argv)
    if args.videos < 1 or args.frames < 1 or args.repeats < 1 or min(args.workers) < 1:
        parser.error("--videos, --frames, --repeats and --workers must be >= 1")

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-throughput-") as scratch_name:
        scratch = Path(scratch_name)
        if args.source is not None:
            root, described = args.source, f"dataset {args.source}"
        elif args.demo:
            from vqe.dataprep.demo import build_demo

            root, described = build_demo(scratch / "demo", seed=0), "the demo set (seed 0)"
        else:
            root = make_clips(scratch / "clips", args.videos, args.width, args.height, args.frames)
            described = (
                f"{args.videos} demo-like clips, {args.width}×{args.height}, {args.frames} "
                f"frames (real pairs at {REAL_FPS} fps, unsupervised at {WEBCAM_FPS} fps)"
            )
        # The first worker pool of a process starts the fork server (imports torch once); time
        # that on a one-clip set so the figures below are the steady extraction rate.
        pool_start = None
        if max(args.workers) > 1:
            warmup = make_clips(scratch / "warmup", 1, 64, 48, 2)
            pool_start = measure(warmup, max(args.workers), scratch)["seconds"]
            print(f"first worker pool of the process (one tiny clip): {pool_start:.2f} s")
        results = []
        for workers in args.workers:
            runs = [measure(root, workers, scratch) for _ in range(args.repeats)]
            median = sorted(runs, key=lambda run: run["frames_per_s"])[len(runs) // 2]
            median["runs_frames_per_s"] = [run["frames_per_s"] for run in runs]
            results.append(median)
            print(
                f"workers={workers}: {median['frames_written']} frames of {median['videos']} "
                f"videos in {median['seconds']:.2f} s = {median['frames_per_s']:.1f} frames/s"
            )

    summary = {
        "benchmark": RESULT_NAME,
        "source": described,
        "fps": 30,
        "first_pool_start_s": pool_start,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "results": results,
    }
    json_path, png_path = args.out / f"{RESULT_NAME}.json", args.out / f"{RESULT_NAME}.png"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    plot(results, f"dataset builder, {os.cpu_count()} CPUs", png_path)
    print(f"saved {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
