"""The enhancer: an image-adaptive 3-D LUT stage and a re-parameterisable U-Net stage."""

from vqe.models.blocks import RepConvBlock, reparameterize_blocks
from vqe.models.enhancer import Enhancer, EnhancerOutput
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import (
    LutStage,
    LutStageOutput,
    identity_lut,
    trilinear_lookup,
)
from vqe.models.unet import UNetStage

__all__ = [
    "Enhancer",
    "EnhancerOutput",
    "LutStage",
    "LutStageOutput",
    "RepConvBlock",
    "UNetStage",
    "enhancer_from_preset",
    "identity_lut",
    "reparameterize_blocks",
    "trilinear_lookup",
]
