"""Export a trained enhancer to CoreML (default) or ONNX: ``vqe export`` (:mod:`vqe.cli.export`)
under its documented path.

    python export_coreml.py CKPT [--out PATH] [--height 720 --width 1280]
        [--precision fp16|int8] [--format coreml|onnx] [--allow-over-budget] [--overwrite]
"""

from __future__ import annotations

import sys

from vqe.quiet import install_warning_filters

if __name__ == "__main__":
    install_warning_filters()  # before coremltools and torch are imported
    from vqe.cli.export import main

    sys.exit(main())
