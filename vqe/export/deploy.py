"""The deploy graph, re-exported: it is built in :mod:`vqe.models.deploy` (the MAC count of
:mod:`vqe.macs` and inference use it too, and they sit below export)."""

from vqe.models.deploy import (
    DeployEnhancer,
    DeployLutStage,
    DeploySpatialLutStage,
    atlas_grid,
    atlas_lookup,
    build_deploy_model,
    lut_atlas,
)

__all__ = [
    "DeployEnhancer",
    "DeployLutStage",
    "DeploySpatialLutStage",
    "atlas_grid",
    "atlas_lookup",
    "build_deploy_model",
    "lut_atlas",
]
