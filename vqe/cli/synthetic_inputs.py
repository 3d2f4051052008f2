"""The ``vqe synthetic-inputs`` command: the synthetic test inputs (``x/*.jpg``) as
``video_XXXX.mp4`` for enhancers, lossless by default (:mod:`vqe.metrics.synthetic_inputs`).

Exit status: 0 when every video was written or left alone, 1 when one failed or the folders are
refused, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.metrics.synthetic_inputs import LOSSLESS_CRF, write_synthetic_inputs
from vqe.output_paths import check_not_an_input
from vqe.schema import SPLITS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe synthetic-inputs",
        description="Encode the synthetic test inputs (x/*.jpg) as video_XXXX.mp4 for enhancers.",
    )
    parser.add_argument("--data-root", type=Path, required=True, help="official layout root")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--out", type=Path, required=True, help="folder for the mp4s")
    parser.add_argument(
        "--crf", type=int, default=LOSSLESS_CRF,
        help="0 (default): lossless RGB; N > 0: the official yuv420p encoding at CRF N (lossy)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace existing mp4s")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.crf < 0:
        parser.error(f"--crf must be ≥ 0, got {args.crf}")
    try:
        check_not_an_input(args.out, "--out", {"--data-root": args.data_root})
        report = write_synthetic_inputs(
            args.data_root, args.out, args.split, args.crf, args.overwrite, not args.no_progress
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
