"""``python -m vqe.cli TOOL …`` is ``vqe TOOL …`` (for an environment whose scripts are not on PATH)."""

import sys

from vqe.cli import main

sys.exit(main())
