"""The enhancer: an image-adaptive 3-D LUT stage (global or region-wise) and a restoration stage
(re-parameterisable U-Net or plain residual blocks)."""

from vqe.models.blocks import RepConvBlock, reparameterize_blocks
from vqe.models.enhancer import Enhancer, EnhancerOutput
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import (
    LutStage,
    LutStageOutput,
    identity_lut,
    trilinear_lookup,
)
from vqe.models.resblocks import ResidualBlocksStage
from vqe.models.spatial_lut import SpatialLutStage
from vqe.models.unet import UNetStage

__all__ = [
    "Enhancer",
    "EnhancerOutput",
    "LutStage",
    "LutStageOutput",
    "RepConvBlock",
    "ResidualBlocksStage",
    "SpatialLutStage",
    "UNetStage",
    "enhancer_from_preset",
    "identity_lut",
    "reparameterize_blocks",
    "trilinear_lookup",
]
