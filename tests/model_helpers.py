"""Enhancers and checkpoints for tests that need a model but no training run."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn

from vqe.models.enhancer import Enhancer
from vqe.models.loading import CONFIG_DIR, ENHANCER_PREFIX, MODEL_CONFIG_KEY


def trained_like(enhancer: Enhancer) -> Enhancer:
    """Random weights, LUT bases and BN statistics in place of a real checkpoint."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in enhancer.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        if enhancer.lut is not None:
            enhancer.lut.basis[1:].normal_(0.0, 0.2)
        for norm in enhancer.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.running_mean.uniform_(-0.3, 0.3)
                norm.running_var.uniform_(0.5, 2.0)
    return enhancer.eval()


def write_checkpoint(enhancer: Enhancer, preset: str, path: Path) -> Path:
    """What train_vqe.py's checkpoints hold for vqe.models.loading to read back."""
    config = yaml.safe_load((CONFIG_DIR / "model_vqe" / f"{preset}.yaml").read_text())
    state = {ENHANCER_PREFIX + name: value for name, value in enhancer.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {MODEL_CONFIG_KEY: config}}, path)
    return path


#: Overrides that make a training run tiny: configs/debug/fast.yaml (CPU, tiny model, crops and
#: batches, no worker processes, no progress bars, one epoch of 2 training and 1 validation
#: batches, cheap DOVER, 2 frames of one video per test subset). test_training, the reliability
#: and DDP modules build on it; a test's own trainer or test_query overrides still win.
TINY_RUN = ["debug=fast"]
