"""Score a submission folder: ``python codalab_scoring/score.py --results DIR [--json FILE]``.

A thin command line over :mod:`vqe.metrics.score`, which holds the formula and the validation.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vqe.metrics.score import main
except ImportError:  # run from a checkout where vqe is not installed: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vqe.metrics.score import main

if __name__ == "__main__":
    sys.exit(main())
