"""``vqe pack CKPT NAME``: a training checkpoint → a model shipped inside the package.

Writes ``vqe/models/pretrained/NAME.ckpt`` (fp16 weights, the checked ``model_vqe`` config and
where they came from; :func:`vqe.models.pretrained.pack_checkpoint`). The model card beside it
(``NAME.md``) is written by hand: training data, recipe, command, benchmark figures.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.models.pretrained import PRETRAINED_DIR, SUFFIX, pack_checkpoint

NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{0,63}$"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe pack", description="Ship a training checkpoint's enhancer (fp16) in the package."
    )
    parser.add_argument("checkpoint", type=Path, help="a train_vqe.py checkpoint")
    parser.add_argument("name", help="the shipped model's name (lower case, digits, '-', '.')")
    parser.add_argument("--command", default="", help="the command that trained it (recorded)")
    parser.add_argument("--overwrite", action="store_true", help="replace a shipped model")
    args = parser.parse_args(argv)
    if not re.match(NAME_PATTERN, args.name):
        parser.error(f"name {args.name!r}: use lower-case letters, digits, '-' and '.'")
    out = PRETRAINED_DIR / f"{args.name}{SUFFIX}"
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1
    try:
        pack_checkpoint(args.checkpoint, out, notes={"command": args.command})
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); write its model card beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
