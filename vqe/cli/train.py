"""``vqe train`` (= ``python train_vqe.py``): train, validate and test a VQE enhancer.

    vqe train [--config-name=vqe] [overrides]

With nothing configured it runs the demo (embedded demo set, random critics, CPU, a few
minutes); see ``configs/vqe.yaml`` and the README for real data and the staged recipe.

Exit codes: 0 done; 1 an error that is the user's to fix (one logged line naming the key or
file and what to do; a mistyped key names the nearest one, :mod:`vqe.cli.config_hints`); 143 / 130
stopped by SIGTERM / Ctrl-C, with a checkpoint and the command that resumes the run logged.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from vqe.config_root import CONFIG_DIR  # light; registers ${vqe.mac_budget:}
from vqe.training.config_checks import ConfigError, check_numbers  # light too


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="vqe")
def main(cfg: DictConfig) -> None:
    # Checked and imported here so that config errors (and --help, --cfg) answer before torch
    # is loaded.
    try:
        check_numbers(cfg)
    except ConfigError as error:
        logging.getLogger("train_vqe").error("%s", error)
        sys.exit(1)
    from vqe.host_memory import keep_freed_memory
    from vqe.training.train import run_training

    keep_freed_memory()  # each step reuses the last one's pages (vqe/host_memory.py)
    code = run_training(cfg)
    if code:
        sys.exit(code)  # a SystemExit passes through Hydra, which would report an exception


if __name__ == "__main__":
    from vqe.cli.config_hints import exit_on_unknown_key

    exit_on_unknown_key("vqe")  # a mistyped key: one line naming the nearest one, exit 1
    main()
