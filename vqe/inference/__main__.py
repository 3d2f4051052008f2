"""``python -m vqe.inference``: the enhancement command, :mod:`vqe.inference.cli`."""

import sys

from vqe.inference.cli import main

sys.exit(main())
