"""``vqe evaluate``: the test loop of ``train_vqe.py`` on a checkpoint, without training.

    vqe evaluate ckpt=<run dir>/checkpoints/last.ckpt \
        [dataset.path=… model_vqa.weights=… model_dover.weights=…] [trainer=gpu]

A Hydra app composing ``configs/evaluate.yaml``; what it writes and prints is
:func:`vqe.training.evaluation.evaluate`'s. Exit status: 0 done; 1 an error that is the user's
to fix (one logged line, no traceback).
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from vqe.config_root import CONFIG_DIR
from vqe.training.evaluation import evaluate
from vqe.training.train import REPORTED_ERRORS

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except REPORTED_ERRORS as error:  # the user's to fix: one line, no traceback
        log.error("%s", error)
        sys.exit(1)  # a SystemExit passes through Hydra, which would report an exception


if __name__ == "__main__":
    from vqe.cli.config_hints import exit_on_unknown_key

    exit_on_unknown_key("evaluate")  # a mistyped key: one line naming the nearest one, exit 1
    main()
