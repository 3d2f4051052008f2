"""Train, validate and test a VQE enhancer: ``python train_vqe.py --config-name=vqe [overrides]``.

With nothing configured it runs the demo (embedded demo set, random critics, CPU, a few
minutes); see ``configs/vqe.yaml`` and the README for real data and the staged recipe.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

import vqe.training.resolvers  # noqa: F401  (the configs' ${vqe.…} resolvers; light import)

CONFIG_DIR = str(Path(__file__).resolve().parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="vqe")
def main(cfg: DictConfig) -> None:
    # Imported here so that config errors (and --help, --cfg) answer before torch is loaded.
    from vqe.training.train import train

    train(cfg)


if __name__ == "__main__":
    main()
