"""The critic options of the scoring commands (``score_outputs``, ``tournament``, the baseline
bar benchmark): the arguments, their checks, and the frozen critics they name."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vqe.critics.dover import DoverCritic, build_dover
from vqe.critics.dover.views import OFFICIAL_NUM_FRAMES, OFFICIAL_TECHNICAL_CLIPS
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import VQA, load_vqa
from vqe.devices import resolve_device
from vqe.metrics.method_scores import DEFAULT_BATCH_SIZE
from vqe.video import VideoError, probe

#: What the README and --help give as the cheap, NOT official, DOVER setting for CPU runs.
CHEAP_DOVER_FLAGS = "--dover-num-frames 2 --dover-technical-clips 1"


def add_critic_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vqa``, ``--dover``, ``--allow-random-critics``, the DOVER clip setting, ``--batch-size``
    and ``--device``."""
    parser.add_argument("--vqa", type=Path, help="VQA.ckpt (organisers' starter kit)")
    parser.add_argument("--dover", type=Path, help="DOVER.pth (public DOVER weights)")
    parser.add_argument(
        "--allow-random-critics", action="store_true",
        help="without --vqa/--dover use seeded RANDOM critics: scores are meaningless "
        "(tests and demos only)",
    )  # fmt: skip
    parser.add_argument(
        "--dover-num-frames", type=int, default=OFFICIAL_NUM_FRAMES,
        help=f"identical frames per DOVER clip ({OFFICIAL_NUM_FRAMES} is official)",
    )  # fmt: skip
    parser.add_argument(
        "--dover-technical-clips", type=int, default=OFFICIAL_TECHNICAL_CLIPS,
        help=f"DOVER fragment mosaics per frame ({OFFICIAL_TECHNICAL_CLIPS} is official; the "
        f"official setting costs ~40 s per 720p frame on a 2-core CPU, {CHEAP_DOVER_FLAGS} is "
        "~20x cheaper and not the official score)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="frames")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:0…")


def check_critic_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error for weights paths that are not files or a bad batch size."""
    for option, path in (("--vqa", args.vqa), ("--dover", args.dover)):
        if path is not None and not path.is_file():
            parser.error(f"{option} {path}: no such file")
        if path is None and not args.allow_random_critics:
            parser.error(
                f"{option} is required (the critic's weights); pass --allow-random-critics to "
                "use a random critic whose scores are meaningless"
            )
    if args.batch_size < 1:
        parser.error(f"--batch-size must be ≥ 1, got {args.batch_size}")
    try:
        resolve_device(args.device)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {args.device}: {error}")


def random_critics_used(args: argparse.Namespace) -> bool:
    return args.vqa is None or args.dover is None


def load_critics(args: argparse.Namespace) -> tuple[VQA, DoverCritic]:
    """The frozen VQA and DOVER (with the requested clip setting) from parsed arguments."""
    vqa = load_vqa(args.vqa, allow_random=args.allow_random_critics)
    dover = build_dover(
        args.dover,
        allow_random_critics=args.allow_random_critics,
        num_frames=args.dover_num_frames,
        num_technical_clips=args.dover_technical_clips,
    )
    return vqa, dover


def critics_label(args: argparse.Namespace) -> str:
    """One line naming the critics, loud when random."""
    vqa = "RANDOM (meaningless)" if args.vqa is None else str(args.vqa)
    dover = "RANDOM (meaningless)" if args.dover is None else str(args.dover)
    setting = f"T={args.dover_num_frames}, K={args.dover_technical_clips}"
    official = (args.dover_num_frames, args.dover_technical_clips) == (
        OFFICIAL_NUM_FRAMES,
        OFFICIAL_TECHNICAL_CLIPS,
    )
    return (
        f"critics: VQA {vqa}; DOVER {dover} ({setting}, "
        f"{'official' if official else 'cheaper than official: not comparable'})"
    )


def first_video_size(folder: Path) -> tuple[int, int] | None:
    """(height, width) of the first readable mp4 in ``folder``, from its header."""
    for path in sorted(folder.glob("*.mp4")) if folder.is_dir() else ():
        try:
            info = probe(path)
        except (VideoError, OSError):
            continue
        return info.height, info.width
    return None


def dover_seconds_per_frame(
    dover: DoverCritic, height: int, width: int, device: torch.device
) -> float:
    """Wall time of DOVER on one frame of this size on ``device`` (one timed call, after the
    critic has moved there)."""
    handle = CriticHandle(dover)
    frame = torch.rand(1, 3, height, width, device=device)
    handle.on(frame)  # the move to the device is not the cost asked for
    with torch.no_grad():
        started = time.perf_counter()
        handle(frame)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return time.perf_counter() - started


def dover_cost_line(
    args: argparse.Namespace, dover: DoverCritic, folder: Path, device: torch.device
) -> str | None:
    """What the DOVER setting costs per frame here, measured on one frame of the first video in
    ``folder`` (None without a readable video) — said before a run that may take hours."""
    size = first_video_size(folder)
    if size is None:
        return None
    seconds = dover_seconds_per_frame(dover, *size, device)
    setting = f"T={args.dover_num_frames}, K={args.dover_technical_clips}"
    line = f"DOVER {setting}: {seconds:.2f} s per {size[1]}×{size[0]} frame on {device} (timed now)"
    official = (args.dover_num_frames, args.dover_technical_clips) == (
        OFFICIAL_NUM_FRAMES,
        OFFICIAL_TECHNICAL_CLIPS,
    )
    if official and seconds > 1.0:
        line += f"; {CHEAP_DOVER_FLAGS} is far cheaper (not the official score)"
    return line
