"""``vqe demo``: write the embedded demo set (:mod:`vqe.dataprep.demo`) and index it.

    vqe demo OUT_DIR [--seed 0] [--force] [--no-index]

Prints the set's size and the time taken; ``--no-index`` skips the frame extraction and the
``train.csv`` / ``test.csv`` index. Exits with 2 when OUT_DIR cannot take a demo set, 1 when
indexing it failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vqe.dataprep.demo import PLAN, build_demo, index_demo
from vqe.schema import TEST_CSV, TRAIN_CSV


def _folder_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe demo",
        description="Build the embedded demo set (official layout) and index it.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to build the demo set in")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty folder that is not a demo set"
    )
    parser.add_argument(
        "--no-index", action="store_true", help="skip frame extraction and the CSV index"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        root = build_demo(args.out_dir, seed=args.seed, force=args.force)
    except (FileExistsError, NotADirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    built = time.perf_counter() - started
    videos = sum(plan.videos for plan in PLAN)
    print(
        f"built the demo set (seed {args.seed}, {videos} videos, "
        f"{_folder_size(root) / 1e6:.2f} MB) in {root} in {built:.1f} s"
    )
    if args.no_index:
        return 0
    try:
        index_demo(root, progress=True)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"indexed {root} ({TRAIN_CSV}, {TEST_CSV}) in {time.perf_counter() - started - built:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
