"""Full-reference quality of enhanced frames against their targets: PSNR, SSIM and LPIPS.

Reported per supervised video (the mean over its frames) in ``tables/quality.csv`` by the test
loop (:class:`vqe.training.callbacks.SubmissionWriter`), ``python -m vqe.evaluate`` and
``vqe score-outputs`` — never in the submission CSVs, which the official scorer reads.

On RGB frames in [0, 1] (outputs clamped there, as a written video would be), per frame:

* **PSNR** — ``torchmetrics`` ``peak_signal_noise_ratio`` with ``data_range=1`` over all pixels
  and channels of the frame (``inf`` for a frame equal to its target);
* **SSIM** — ``torchmetrics`` ``structural_similarity_index_measure`` (Gaussian window 11,
  σ = 1.5, per channel, ``data_range=1``), averaged over the pixels whose window lies inside the
  frame (5 pixels cropped at each border) — the convention of the original SSIM code and of
  ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  use_sample_covariance=False)``; torchmetrics alone averages the reflect-padded border too;
* **LPIPS** — the ``lpips`` network of :func:`vqe.losses.build_lpips_network` (the same loader as
  the LPIPS loss: calibrated linear layers shipped inside the ``lpips`` package, the torchvision
  backbone from a local file — torchvision's cache ``torch.hub.get_dir()/checkpoints/…`` by
  default — never downloaded). torchmetrics' own LPIPS class is not used because it can only
  fetch its backbone through torchvision. Without the backbone file the LPIPS column is left
  out, with one log line saying why; a random backbone is never used for these tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from vqe.losses import LPIPS_BACKBONE_FILES, LPIPSWeightsMissingError, build_lpips_network
from vqe.losses import default_backbone_path as default_lpips_backbone

log = logging.getLogger(__name__)

PSNR, SSIM, LPIPS = "psnr", "ssim", "lpips"
#: SSIM's Gaussian window: 11 taps (σ = 1.5), so 5 pixels per border see the padding.
SSIM_SIGMA = 1.5
SSIM_BORDER = 5


def _check_pair(outputs: Tensor, targets: Tensor) -> None:
    if outputs.ndim != 4 or outputs.shape[1] != 3 or outputs.shape != targets.shape:
        raise ValueError(
            f"quality metrics need N×3×H×W outputs and targets of one shape, got "
            f"{tuple(outputs.shape)} and {tuple(targets.shape)}"
        )
    if min(outputs.shape[-2:]) <= 2 * SSIM_BORDER:
        raise ValueError(
            f"SSIM needs frames larger than {2 * SSIM_BORDER}×{2 * SSIM_BORDER} pixels, got "
            f"{outputs.shape[-1]}×{outputs.shape[-2]}; turn the quality table off with "
            "evaluation.quality.enabled=false (score_outputs: --no-quality)"
        )


def frame_psnr(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-frame PSNR (dB) of N×3×H×W frames in [0, 1]."""
    return peak_signal_noise_ratio(
        outputs, targets, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )


def frame_ssim(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-frame SSIM of N×3×H×W frames in [0, 1], border cropped (see the module notes)."""
    _, full = structural_similarity_index_measure(
        outputs, targets, data_range=1.0, sigma=SSIM_SIGMA, reduction="none",
        return_full_image=True,
    )  # fmt: skip
    inner = full[..., SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER]
    return inner.flatten(1).mean(dim=1)


def load_lpips(
    net: str = "alex",
    backbone_weights: str | Path | None = None,
    linear_weights: str | Path | None = None,
) -> tuple[nn.Module | None, str]:
    """(frozen LPIPS network, "") or (None, why it is unavailable). Never downloads."""
    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f"LPIPS net {net!r}: choose one of {sorted(LPIPS_BACKBONE_FILES)}")
    backbone = Path(backbone_weights).expanduser() if backbone_weights else None
    path = backbone or default_lpips_backbone(net)
    if not path.is_file():
        return None, (
            f"the {net} backbone weights {path} are not there (nothing is downloaded); put "
            f"torchvision's {LPIPS_BACKBONE_FILES[net]} there or set "
            "evaluation.quality.lpips_backbone_weights (score_outputs: --lpips-backbone)"
        )
    try:
        network = build_lpips_network(net, path, False, linear_weights)
    except (LPIPSWeightsMissingError, ValueError) as error:
        return None, str(error)
    network.eval().requires_grad_(False)
    return network, ""


class FrameQuality(nn.Module):
    """Per-frame ``[psnr, ssim(, lpips)]`` of outputs against targets; see the module notes.

    Build with :func:`build_frame_quality`. The LPIPS network, when present, is a sub-module:
    ``.to(device)`` moves it; it stays in eval mode.
    """

    def __init__(self, lpips_network: nn.Module | None = None) -> None:
        super().__init__()
        self.lpips_network = lpips_network

    @property
    def columns(self) -> tuple[str, ...]:
        return (PSNR, SSIM, LPIPS) if self.lpips_network is not None else (PSNR, SSIM)

    def train(self, mode: bool = True) -> FrameQuality:
        return super().train(False)  # a frozen metric: BN/dropout never switch to training

    @torch.no_grad()
    def forward(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """N×len(columns) float32 on the CPU."""
        _check_pair(outputs, targets)
        outputs = outputs.detach().float().clamp(0.0, 1.0)
        targets = targets.detach().float().clamp(0.0, 1.0)
        values = [frame_psnr(outputs, targets), frame_ssim(outputs, targets)]
        if self.lpips_network is not None:
            device = next(self.lpips_network.parameters()).device
            distance = self.lpips_network(outputs.to(device), targets.to(device), normalize=True)
            values.append(distance.flatten().to(outputs.device))
        return torch.stack(values, dim=1).cpu()


def build_frame_quality(
    lpips: bool = True,
    lpips_net: str = "alex",
    lpips_backbone_weights: str | Path | None = None,
    lpips_linear_weights: str | Path | None = None,
) -> FrameQuality:
    """PSNR and SSIM, plus LPIPS when ``lpips`` and its weights are there; logs one line on
    what the quality table will hold."""
    network = None
    if lpips:
        network, reason = load_lpips(lpips_net, lpips_backbone_weights, lpips_linear_weights)
        if network is None:
            log.warning("quality table without the LPIPS column: %s", reason)
    else:
        log.info("quality table without the LPIPS column: switched off (lpips=false)")
    return FrameQuality(network)


__all__ = [
    "LPIPS",
    "PSNR",
    "SSIM",
    "FrameQuality",
    "build_frame_quality",
    "frame_psnr",
    "frame_ssim",
    "load_lpips",
]
