"""The training system: LightningModule, ``train(cfg)``, ``evaluate(cfg)`` (its test loop on a
checkpoint), callbacks, critics and the checkpoint guards.

Import the sub-modules directly (``from vqe.training.train import train``).
"""
