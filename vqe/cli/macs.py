"""``vqe macs``: MACs per frame of a ``model_vqe`` preset (its deploy graph) against the budget.

    vqe macs model_vqe=<preset> [height=720 width=1280 limit=20e9 max_depth=3]

A Hydra app composing ``configs/macs.yaml``: prints a per-module table (:mod:`vqe.macs`) whose
last line is ``total_macs=<integer>``, and exits 1 over the limit.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from vqe.config_root import CONFIG_DIR


def run(cfg: DictConfig) -> int:
    """Build ``cfg.model_vqe``, print its MAC table and ``total_macs=``; 1 when over the limit."""
    # Imported here: --help and a config error answer before torch and fvcore load.
    from hydra.utils import instantiate

    from vqe.macs import count_macs

    model = instantiate(cfg.model_vqe)
    report = count_macs(model, height=int(cfg.height), width=int(cfg.width))
    print(f"MACs per 1×3×{report.height}×{report.width} frame (deploy graph)")
    print(report.table(max_depth=int(cfg.max_depth)))
    over = report.total > float(cfg.limit)
    if over:
        print(
            f"over budget: {report.total:,} MACs > limit {float(cfg.limit):,.0f}", file=sys.stderr
        )
    sys.stdout.flush()
    print(f"total_macs={report.total}")
    return 1 if over else 0


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="macs")
def main(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)  # a SystemExit passes through Hydra, which would report an exception


if __name__ == "__main__":
    from vqe.cli.config_hints import exit_on_unknown_key

    exit_on_unknown_key("macs")  # a mistyped key: one line naming the nearest one, exit 1
    main()
