"""Training losses: each term a small module, combined by the weights of ``configs/loss/``.

A term maps one :class:`LossInputs` (input frames, the enhancer's output, the target when the
batch has one, the critics' scores when the loss needs them) to a scalar. It says what it needs
(``needs_target``, ``needs_lut``, ``needs_critics``); :class:`WeightedLoss` applies the terms
whose needs the batch meets — a supervised term is skipped on a batch without targets — and
returns the weighted total and every applied term, so each can be logged on its own.

Terms:

* :class:`VQAObjective` — the official objective: MSE of ``[p, a1, a2, a3, 1 − a4, a5 … a11]``
  (every score oriented to grow with quality) against 1, from ``VQA(ŷ, x, dover(ŷ), dover(x))``.
* :class:`SupervisedMSE`, :class:`SupervisedL1` — pixel losses against the target (the MSE
  optionally on the official ``(v − 128)/128`` scale, as the reference objective has it).
* :class:`CosineColour` — 1 − cosine similarity of the RGB vectors of output and target pixels
  (hue and saturation errors, whatever the brightness).
* :class:`SSIMLoss` — 1 − SSIM against the target (local mean, contrast and structure: sees a
  lifted black level and flattened contrast that pixel losses average away).
* :class:`LabColourDifference` — mean CIE76 ΔE in Lab against the target (a cast or a raised
  black costs in proportion to how visible it is).
* :class:`LPIPSLoss` — LPIPS (the ``lpips`` package) against the target. Its backbone weights
  are read from a local file (torchvision's classification checkpoint); nothing is downloaded.
* :class:`LutSmoothness`, :class:`LutMonotonicity`, :class:`LutSparsity` — the LUT regularisers
  of :mod:`vqe.models.lut` on the LUTs and blending weights the forward pass used.
* :class:`DoverQuality` — ``1 − DOVER(ŷ)``; it only trains when the training DOVER is
  differentiable (``model_dover.differentiable=true``), and says so otherwise.

:func:`build_loss` builds a :class:`WeightedLoss` from a ``configs/loss`` node, instantiating only
the terms with a non-zero weight (so an unused LPIPS needs no weights file).

Nothing here leaves torch: no ``.item()``, no uint8, no in-place edits of graph tensors —
gradients reach the enhanced frames through every term, the critics included.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vqe.conventions import to_vqa
from vqe.critics.frozen import CriticHandle
from vqe.critics.scorer import CriticScores
from vqe.critics.vqa import higher_is_better
from vqe.models.enhancer import EnhancerOutput
from vqe.models.lut import lut_monotonicity, lut_total_variation, weight_sparsity

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- inputs


@dataclass
class LossInputs:
    inputs: Tensor  # N×3×H×W input frames, RGB [0, 1]
    output: EnhancerOutput  # the enhancer's forward pass on them
    target: Tensor | None = None  # N×3×H×W target frames, on supervised batches only
    critics: CriticScores | None = None  # on losses that need the critics


@dataclass
class LossResult:
    total: Tensor  # the weighted sum of the applied terms
    terms: dict[str, Tensor]  # each applied term, unweighted


# --------------------------------------------------------------------------- terms


class LossTerm(nn.Module):
    """One loss term: ``forward(inputs) -> scalar``. Class flags say what a batch must carry."""

    needs_target = False
    needs_lut = False
    needs_critics = False

    def applies_to(self, inputs: LossInputs) -> bool:
        if self.needs_target and inputs.target is None:
            return False
        if self.needs_lut and inputs.output.luts is None:
            return False
        return not (self.needs_critics and inputs.critics is None)

    def forward(self, inputs: LossInputs) -> Tensor:
        raise NotImplementedError


def _target(inputs: LossInputs) -> Tensor:
    assert inputs.target is not None  # guarded by applies_to
    return inputs.target


def _critics(inputs: LossInputs) -> CriticScores:
    assert inputs.critics is not None  # guarded by applies_to
    return inputs.critics


class VQAObjective(LossTerm):
    """MSE of the oriented VQA scores ``[p, a1, a2, a3, 1 − a4, a5 … a11]`` against 1."""

    needs_critics = True

    def forward(self, inputs: LossInputs) -> Tensor:
        critics = _critics(inputs)
        scores = higher_is_better(critics.p, critics.aux_enhanced)
        return F.mse_loss(scores, torch.ones_like(scores))


ValueScale = Literal["unit", "vqa"]
VALUE_SCALES = ("unit", "vqa")


class SupervisedMSE(LossTerm):
    """MSE against the target, on internal [0, 1] values (``unit``) or on the official
    ``(v − 128)/128`` scale (``vqa``: what the reference pipeline's loss sees, ≈ 3.97 × the
    ``unit`` value — starter ``train_vqe.py::compute_loss``)."""

    needs_target = True

    def __init__(self, value_scale: ValueScale = "unit") -> None:
        super().__init__()
        if value_scale not in VALUE_SCALES:
            raise ValueError(
                f"loss.terms.mse.value_scale={value_scale!r}: choose 'unit' (frames in [0, 1]) "
                "or 'vqa' (the official (v − 128)/128 scale)"
            )
        self.value_scale = value_scale

    def forward(self, inputs: LossInputs) -> Tensor:
        output, target = inputs.output.frames, _target(inputs)
        if self.value_scale == "vqa":
            output, target = to_vqa(output), to_vqa(target)
        return F.mse_loss(output, target)


class SupervisedL1(LossTerm):
    needs_target = True

    def forward(self, inputs: LossInputs) -> Tensor:
        return F.l1_loss(inputs.output.frames, _target(inputs))


class CosineColour(LossTerm):
    """Mean over pixels of 1 − cos(angle between the output's and the target's RGB vectors)."""

    needs_target = True

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps  # keeps black pixels (zero vectors) finite

    def forward(self, inputs: LossInputs) -> Tensor:
        similarity = F.cosine_similarity(inputs.output.frames, _target(inputs), dim=1, eps=self.eps)
        return (1.0 - similarity).mean()


def gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """1-D normalised Gaussian of ``size`` taps (applied separably by :func:`ssim_map`)."""
    positions = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    window = torch.exp(-positions.square() / (2.0 * sigma**2))
    return window / window.sum()


def ssim_map(
    x: Tensor, y: Tensor, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> Tensor:
    """Per-pixel, per-channel SSIM of N×C×H×W images (Wang et al., 2004), Gaussian-weighted
    local statistics over the valid region (no padding). The window shrinks (odd) for frames
    smaller than it."""
    size = min(window_size, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # odd, so the window has a centre
    channels = x.shape[1]
    window = gaussian_window(size, sigma, x.dtype, x.device)
    horizontal = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    vertical = window.view(1, 1, size, 1).expand(channels, 1, size, 1)

    def local_mean(values: Tensor) -> Tensor:
        blurred = F.conv2d(values, horizontal, groups=channels)
        return F.conv2d(blurred, vertical, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mean_x.square()
    var_y = local_mean(y * y) - mean_y.square()
    covariance = local_mean(x * y) - mean_x * mean_y
    luminance = (2.0 * mean_x * mean_y + c1) / (mean_x.square() + mean_y.square() + c1)
    structure = (2.0 * covariance + c2) / (var_x + var_y + c2)
    return luminance * structure


class SSIMLoss(LossTerm):
    """1 − mean SSIM of output and target (Gaussian window, 11 taps, σ = 1.5).

    Why: per-pixel L1/MSE barely notice a lifted black level or flattened contrast spread thinly
    over a frame, and reward averaging noise into a haze; SSIM compares local means, contrasts
    and structure, so hazy blacks and lost contrast cost what they look like."""

    needs_target = True

    def __init__(self, window_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        if window_size < 1 or sigma <= 0:
            raise ValueError(
                f"loss.terms.ssim: window_size >= 1 and sigma > 0, got {window_size}, {sigma}"
            )
        self.window_size = int(window_size)
        self.sigma = float(sigma)

    def forward(self, inputs: LossInputs) -> Tensor:
        similarity = ssim_map(inputs.output.frames, _target(inputs), self.window_size, self.sigma)
        return 1.0 - similarity.mean()


#: sRGB (linear, D65) → XYZ, and the D65 white point: the CIE definitions Lab is built on.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)
_LAB_DELTA = 6.0 / 29.0


def srgb_to_lab(frames: Tensor) -> Tensor:
    """N×3×H×W sRGB in [0, 1] → N×3×H×W CIE Lab (L in [0, 100]), differentiable everywhere
    (the cube root's steep start is replaced by the standard linear segment, and every branch
    is evaluated on inputs where it is finite)."""
    rgb = frames.clamp(0.0, 1.0)
    linear = torch.where(
        rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    )
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=frames.dtype, device=frames.device)
    white = torch.tensor(_D65_WHITE, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear) / white
    threshold = _LAB_DELTA**3
    f = torch.where(
        xyz > threshold,
        xyz.clamp(min=threshold) ** (1.0 / 3.0),
        xyz / (3.0 * _LAB_DELTA**2) + 4.0 / 29.0,
    )
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def delta_e76(x: Tensor, y: Tensor, eps: float = 1e-3) -> Tensor:
    """Per-pixel CIE76 colour difference ‖Lab(x) − Lab(y)‖ of N×3×H×W sRGB frames, as
    √(d² + ε²) − ε: 0 for identical pixels, with a finite gradient there (a plain norm has none)."""
    squared = (srgb_to_lab(x) - srgb_to_lab(y)).square().sum(dim=1)
    return (squared + eps**2).sqrt() - eps


class LabColourDifference(LossTerm):
    """Mean CIE76 ΔE between output and target (Lab units: ≈ 1 is a just-noticeable step).

    Why: RGB losses weigh an orange cast on skin or a raised black like any other error of the
    same size in [0, 1]; Lab is close to perceptually uniform, so a cast or a black-level error
    costs in proportion to how visible it is, dark tones included."""

    needs_target = True

    def forward(self, inputs: LossInputs) -> Tensor:
        return delta_e76(inputs.output.frames, _target(inputs)).mean()


class LutSmoothness(LossTerm):
    """Total variation of the blended LUTs (:func:`vqe.models.lut.lut_total_variation`)."""

    needs_lut = True

    def forward(self, inputs: LossInputs) -> Tensor:
        assert inputs.output.luts is not None
        return lut_total_variation(inputs.output.luts)


class LutMonotonicity(LossTerm):
    """How much an output channel falls along its own input axis (:func:`lut_monotonicity`)."""

    needs_lut = True

    def forward(self, inputs: LossInputs) -> Tensor:
        assert inputs.output.luts is not None
        return lut_monotonicity(inputs.output.luts)


class LutSparsity(LossTerm):
    """L1 norm of the per-frame LUT-stage coefficients (:func:`weight_sparsity`): the blending
    weights and, with a gain map, its log-gains (a pull towards gain 1)."""

    needs_lut = True

    def forward(self, inputs: LossInputs) -> Tensor:
        assert inputs.output.lut_weights is not None
        return weight_sparsity(inputs.output.lut_weights)


class DoverQuality(LossTerm):
    """``mean(1 − DOVER(ŷ))``: needs a differentiable training DOVER to move the model."""

    needs_critics = True

    def forward(self, inputs: LossInputs) -> Tensor:
        dover = _critics(inputs).dover_enhanced
        if torch.is_grad_enabled() and not dover.requires_grad:
            raise RuntimeError(
                "loss term 'dover' has a non-zero weight but DOVER(enhanced) carries no "
                "gradient; set model_dover.differentiable=true, or loss.weights.dover=0"
            )
        return (1.0 - dover).mean()


# --------------------------------------------------------------------------- LPIPS

#: The torchvision classification checkpoints the ``lpips`` package would download, by net.
LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
_TORCHVISION_URL = "https://download.pytorch.org/models/"


class LPIPSWeightsMissingError(FileNotFoundError):
    """An LPIPS weights file is absent and a random backbone was not allowed."""


def default_backbone_path(net: str) -> Path:
    """Where torchvision caches the backbone checkpoint (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILES[net]


def _backbone_state(network: nn.Module, checkpoint: Mapping[str, Tensor], path: Path) -> dict:
    """torchvision's ``features.<i>.<param>`` → lpips' ``slice<k>.<i>.<param>`` (same layers,
    cut into slices; the slice names keep torchvision's layer index)."""
    mapped: dict[str, Tensor] = {}
    missing: list[str] = []
    for name in network.state_dict():
        _, index, rest = name.split(".", 2)
        source = f"features.{index}.{rest}"
        if source in checkpoint:
            mapped[name] = checkpoint[source]
        else:
            missing.append(source)
    if missing:
        raise ValueError(
            f"{path}: not a torchvision classification checkpoint of this LPIPS backbone; "
            f"missing {missing[:4]}{' …' if len(missing) > 4 else ''}"
        )
    return mapped


def build_lpips_network(
    net: str = "alex",
    backbone_weights: str | Path | None = None,
    allow_random_backbone: bool = False,
    linear_weights: str | Path | None = None,
) -> nn.Module:
    """An ``lpips.LPIPS`` network that never downloads anything.

    The package's own constructor would fetch the torchvision backbone (``pretrained=True`` on
    the trunk); it is built with ``pnet_rand=True`` instead and the backbone is loaded here from
    ``backbone_weights`` (default: torchvision's cache file, :func:`default_backbone_path`). The
    calibrated linear layers come from ``linear_weights`` (default: the file shipped inside the
    ``lpips`` package). A missing backbone file raises :class:`LPIPSWeightsMissingError`, unless
    ``allow_random_backbone`` and no path was given (the default file is absent): then the
    backbone stays random, with a loud warning. A path that is given must exist — a mistyped
    one is never replaced by random weights.
    """
    import lpips  # imported late: only losses that use LPIPS pay for it

    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f"LPIPS net {net!r}: choose one of {sorted(LPIPS_BACKBONE_FILES)}")
    linear_path = (
        Path(linear_weights).expanduser()
        if linear_weights
        else Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    )
    if not linear_path.is_file():
        raise LPIPSWeightsMissingError(
            f"LPIPS linear-layer weights {linear_path} not found; reinstall the lpips package "
            "(it ships them) or set loss.terms.lpips.linear_weights"
        )
    backbone_path = (
        Path(backbone_weights).expanduser() if backbone_weights else default_backbone_path(net)
    )
    with warnings.catch_warnings():  # torchvision's deprecation notice for `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        network = lpips.LPIPS(
            net=net, pnet_rand=True, pretrained=True, model_path=str(linear_path), verbose=False
        )
    if backbone_path.is_file():
        checkpoint = torch.load(backbone_path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"{backbone_path}: expected a state dict, got {type(checkpoint)}")
        network.net.load_state_dict(_backbone_state(network.net, checkpoint, backbone_path))
        log.info("LPIPS %s backbone loaded from %s", net, backbone_path)
    elif allow_random_backbone and not backbone_weights:
        message = (
            f"LPIPS: backbone weights {backbone_path} not found; using a RANDOM {net} backbone "
            "because allow_random_backbone is true. LPIPS values are MEANINGLESS — tests and the "
            "demo only."
        )
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    else:
        raise LPIPSWeightsMissingError(
            f"LPIPS: backbone weights {backbone_path} not found (nothing is downloaded; a path "
            "that is given is never replaced by random weights). Get "
            f"{_TORCHVISION_URL}{LPIPS_BACKBONE_FILES[net]} and put it there, or set "
            "loss.terms.lpips.backbone_weights=/path/to/it, or set loss.weights.lpips=0"
        )
    return network


class LPIPSLoss(LossTerm):
    """LPIPS distance between output and target (inputs in [0, 1]), averaged over the batch.

    The LPIPS network is frozen and held in a :class:`~vqe.critics.frozen.CriticHandle`, so it is
    neither saved in checkpoints nor optimised, and follows the frames' device.
    """

    needs_target = True

    def __init__(
        self,
        net: str = "alex",
        backbone_weights: str | Path | None = None,
        allow_random_backbone: bool = False,
        linear_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.network = CriticHandle(
            build_lpips_network(net, backbone_weights, allow_random_backbone, linear_weights)
        )

    def forward(self, inputs: LossInputs) -> Tensor:
        return self.network(inputs.output.frames, _target(inputs), normalize=True).mean()


# --------------------------------------------------------------------------- combination


class NoApplicableLossError(RuntimeError):
    """No weighted term applies to a batch (e.g. supervised terms on an unsupervised batch)."""


class WeightedLoss(nn.Module):
    """``Σ weight · term(inputs)`` over the terms that apply to the batch."""

    def __init__(self, terms: Mapping[str, LossTerm], weights: Mapping[str, float]) -> None:
        super().__init__()
        unknown = sorted(set(weights) - set(terms))
        unweighted = sorted(set(terms) - set(weights))
        if unknown or unweighted:
            raise ValueError(
                f"loss: weights without a term {unknown}, terms without a weight {unweighted}; "
                "every loss.weights key needs a loss.terms entry and vice versa"
            )
        if not terms:
            raise ValueError("loss: no term has a non-zero weight; set some loss.weights.<name>")
        for name, weight in weights.items():
            if not math.isfinite(float(weight)):
                raise ValueError(f"loss.weights.{name} is {weight}; weights must be finite")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {name: float(weight) for name, weight in weights.items()}

    @property
    def needs_critics(self) -> bool:
        return any(term.needs_critics for term in self.terms.values())

    def forward(self, inputs: LossInputs) -> LossResult:
        values: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            if term.applies_to(inputs):
                values[name] = term(inputs)
        if not values:
            raise NoApplicableLossError(
                f"no loss term applies to this batch (target: {inputs.target is not None}, "
                f"terms: {sorted(self.terms)}); a batch without targets needs a critic term "
                "(loss.weights.vqa > 0), or restrict dataset.train_query to supervised subsets"
            )
        total = torch.stack([self.weights[name] * value for name, value in values.items()]).sum()
        return LossResult(total=total, terms=values)


def build_loss(cfg: Mapping[str, Any]) -> WeightedLoss:
    """A :class:`WeightedLoss` from a ``configs/loss`` node (``weights`` + ``terms``).

    Only terms with a non-zero weight are instantiated (``hydra.utils.instantiate``).
    """
    from hydra.utils import instantiate

    weights = dict(cfg["weights"])
    term_configs = cfg["terms"]
    missing = sorted(
        name for name, weight in weights.items() if weight and name not in term_configs
    )
    if missing:
        raise ValueError(
            f"loss.weights {missing} have no loss.terms entry; known terms: {sorted(term_configs)}"
        )
    active = {name: float(weight) for name, weight in weights.items() if weight}
    terms = {name: instantiate(term_configs[name]) for name in active}
    for name, term in terms.items():
        if not isinstance(term, LossTerm):
            raise TypeError(f"loss.terms.{name} built a {type(term).__name__}, not a LossTerm")
    return WeightedLoss(terms, active)


class NonFiniteLossError(FloatingPointError):
    """The loss (or one of its terms) is NaN or infinite; the run stops."""


def check_finite(result: LossResult, step: int) -> None:
    """Raise :class:`NonFiniteLossError` naming the step and every term when the loss is not
    finite. One host sync per call; it reads values, it is not part of the loss path."""
    values = torch.stack([result.total.detach(), *(v.detach() for v in result.terms.values())])
    if bool(torch.isfinite(values).all()):
        return
    listed = ", ".join(
        f"{name}={float(value):.6g}" for name, value in zip(["total", *result.terms], values)
    )
    raise NonFiniteLossError(
        f"non-finite loss at global step {step}: {listed}. Lower optimizer.lr, check the data "
        "of this step, or resume from the last checkpoint"
    )


__all__ = [
    "CosineColour",
    "DoverQuality",
    "LPIPSLoss",
    "LabColourDifference",
    "LPIPSWeightsMissingError",
    "LossInputs",
    "LossResult",
    "LossTerm",
    "LutMonotonicity",
    "LutSmoothness",
    "LutSparsity",
    "NoApplicableLossError",
    "NonFiniteLossError",
    "SSIMLoss",
    "SupervisedL1",
    "SupervisedMSE",
    "VQAObjective",
    "WeightedLoss",
    "build_loss",
    "build_lpips_network",
    "check_finite",
    "default_backbone_path",
    "delta_e76",
    "srgb_to_lab",
    "ssim_map",
]
