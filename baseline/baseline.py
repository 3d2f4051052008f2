"""Baseline enhancer: ``python baseline/baseline.py --dir_in DIR --dir_out DIR [--workers N]``.

The command ``vqe baseline`` (:mod:`vqe.cli.baseline`) under its documented path; the tone
curve is :mod:`vqe.baseline.tone`.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vqe.cli.baseline import main
except ImportError:  # run from a checkout where vqe is not installed: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vqe.cli.baseline import main

if __name__ == "__main__":
    sys.exit(main())
