"""Score a submission: ``python codalab_scoring/score.py --results DIR|ZIP [--json FILE]``
``[--subset] [--strict] [--max-bytes 16M] [--max-rows 100000]``.

The command ``vqe score`` (:mod:`vqe.cli.score`) under its documented path; the formula, the
validation and the size caps (``--max-bytes``: CSV bytes read, a zip's members counted
uncompressed; ``--max-rows``: rows per CSV) are :mod:`vqe.metrics.score`.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vqe.cli.score import main
except ImportError:  # run from a checkout where vqe is not installed: use the repository copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vqe.cli.score import main

if __name__ == "__main__":
    sys.exit(main())
