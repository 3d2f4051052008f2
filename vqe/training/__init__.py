"""The training system: LightningModule, ``train(cfg)``, callbacks, critics and checkpoints.

Import the sub-modules directly (``from vqe.training.train import train``).
"""
