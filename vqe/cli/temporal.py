"""The ``vqe temporal`` command: flicker and warping error of an enhanced video file against its
input, printed, and optionally both temporal profiles as one PNG (:mod:`vqe.metrics.temporal`).

Exit status: 0 when measured, 1 when a video cannot be read or compared or ``--profile`` is
refused, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqe.metrics.temporal import (
    DEFAULT_FLOW_HEIGHT,
    DEFAULT_GRID,
    ProfileBuilder,
    compare_videos,
    save_profile_plot,
)
from vqe.output_paths import check_not_an_input, check_writable


def _optional_height(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "full") else int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe temporal",
        description="Flicker and warping error of an enhanced video against its input.",
    )
    parser.add_argument("output", type=Path, help="enhanced video")
    parser.add_argument("input", type=Path, help="the input it was made from")
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, help="flicker regions per side")
    parser.add_argument(
        "--flow-height", type=_optional_height, default=DEFAULT_FLOW_HEIGHT,
        help=f"downscale taller frames to this height for the warping error (default "
        f"{DEFAULT_FLOW_HEIGHT}; 'full' keeps the size)",
    )  # fmt: skip
    parser.add_argument("--no-warping", action="store_true", help="skip the warping error")
    parser.add_argument(
        "--profile", type=Path,
        help="save the input and output temporal profiles here (PNG: input above output, "
        "frames along x)",
    )  # fmt: skip
    parser.add_argument("--column", type=int, help="pixel column of the profile (default: middle)")
    args = parser.parse_args(argv)
    profiles = (ProfileBuilder(args.column), ProfileBuilder(args.column))

    def add_profiles(output_frame: np.ndarray, input_frame: np.ndarray) -> None:
        profiles[0].add(input_frame)
        profiles[1].add(output_frame)

    try:
        if args.profile is not None:
            check_writable(args.profile, "--profile")  # before decoding both videos
            check_not_an_input(
                args.profile, "--profile", {"output": args.output, "input": args.input}
            )
        result = compare_videos(
            args.output,
            args.input,
            args.grid,
            args.flow_height,
            warping=not args.no_warping,
            on_pair=add_profiles if args.profile is not None else None,
        )
        for note in result.notes:
            print(f"note: {note}")
        print(f"frames {result.frames}")
        print(f"flicker {result.flicker:.4f}")
        if not args.no_warping:
            print(f"warping_error {result.warping_error:.6f}")
            print(f"input_warping_error {result.input_warping_error:.6f} (the input's own)")
            print(f"reliable_fraction {result.reliable_fraction:.3f}")
        if args.profile is not None:
            panels = [("input", profiles[0].image()), ("output", profiles[1].image())]
            print(f"wrote {save_profile_plot(panels, args.profile, args.column)}")
    except (ValueError, RuntimeError, OSError) as error:  # VideoError is a RuntimeError
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
