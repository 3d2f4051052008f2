"""The training system: LightningModule, ``train(cfg)``, callbacks, critics and checkpoints.

Importing this package registers the config resolvers (:mod:`vqe.training.resolvers`). Import
the sub-modules directly (``from vqe.training.train import train``).
"""

from vqe.training import resolvers  # noqa: F401  (registers ${vqe.is_null:…} and ${vqe.if:…})
