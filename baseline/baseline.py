"""Baseline enhancer: ``python baseline/baseline.py --dir_in DIR --dir_out DIR [--workers N]``.

A thin entry point; the logic lives in :mod:`vqe.baseline`.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vqe.baseline.cli import main
except ImportError:  # run from a checkout where vqe is not installed: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vqe.baseline.cli import main

if __name__ == "__main__":
    sys.exit(main())
