"""Train, validate and test a VQE enhancer: ``python train_vqe.py --config-name=vqe [overrides]``.

The command ``vqe train`` (:mod:`vqe.cli.train`) under its documented path. With nothing
configured it runs the demo (embedded demo set, random critics, CPU, a few minutes); see
``configs/vqe.yaml`` and the README for real data and the staged recipe.

Exit codes: 0 done; 1 an error that is the user's to fix (one logged line naming the key or
file and what to do; a mistyped key names the nearest one, :mod:`vqe.cli.config_hints`); 143 / 130
stopped by SIGTERM / Ctrl-C, with a checkpoint and the command that resumes the run logged.
"""

from __future__ import annotations

from vqe.cli.config_hints import exit_on_unknown_key  # light: Hydra and OmegaConf only
from vqe.quiet import install_warning_filters

if __name__ == "__main__":
    install_warning_filters()  # before torch and Lightning are imported
    exit_on_unknown_key("vqe")  # a mistyped key: one line with the nearest one, exit 1
    from vqe.cli.train import main

    main()
