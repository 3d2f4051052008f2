"""The DOVER network (technical + aesthetic branches, two heads), its fused score, and loading.

* :class:`DOVER` — the network of the public ``DOVER.pth`` (its ``state_dict`` matches
  ``tests/fixtures/dover_state_dict_keys.tsv``). ``forward(views)`` takes already-normalised
  views ``{'technical': K×3×T×H×W, 'aesthetic': K×3×T×H×W}`` and returns the two score maps
  ``[technical, aesthetic]`` (each K×1×T/2×H/32×W/32), like the reference network.
  :meth:`DOVER.score` is the adapter from internal frames to the fused score in [0, 1].
* :func:`load_dover` — the frozen network, loaded strictly once per process.
* :class:`DoverCritic` / :func:`build_dover` — the network plus the clip settings of one use
  (official for metrics, cheaper or differentiable for training); the Hydra entry point of
  ``configs/model_dover``. The settings live outside the shared network so that one process
  can score with both.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from vqe.conventions import (
    DOVER_CHANNEL_ORDERS,
    OFFICIAL_DOVER_CHANNEL_ORDER,
    DoverChannelOrder,
)
from vqe.critics.dover.convnext3d import ConvNeXt3D
from vqe.critics.dover.swin3d import SwinTransformer3D
from vqe.critics.dover.views import (
    AESTHETIC,
    OFFICIAL_NUM_FRAMES,
    OFFICIAL_TECHNICAL_CLIPS,
    TECHNICAL,
    VIEW_NAMES,
    check_frames,
    check_view_settings,
    image_views,
)
from vqe.critics.frozen import freeze, load_once
from vqe.critics.weights import (
    load_strict,
    read_state_dict,
    resolve_weights,
    weights_digest,
)

log = logging.getLogger(__name__)

FEATURES = 768
HEAD_HIDDEN = 64

WEIGHTS_FILE = "DOVER.pth"
CONFIG_GROUP = "model_dover"
WHERE_TO_GET = (
    "from https://github.com/QualityAssessment/DOVER/releases/download/v0.1.0/DOVER.pth "
    "(the public DOVER weights)"
)
#: Seed of the random critic used when no weights are available (tests, demo).
RANDOM_SEED = 0

# The score-level fusion the VQA critic was paired with (docs/protocol.md, DOVER): keep exactly.
AESTHETIC_SHIFT, AESTHETIC_SCALE, AESTHETIC_WEIGHT = 0.1107, 0.07355, 0.6104
TECHNICAL_SHIFT, TECHNICAL_SCALE, TECHNICAL_WEIGHT = 0.08285, 0.03774, 0.3896


def fuse_branch_scores(technical: Tensor, aesthetic: Tensor) -> Tensor:
    """``sigmoid((r[1] − 0.1107)/0.07355·0.6104 + (r[0] + 0.08285)/0.03774·0.3896)`` with
    r = [technical, aesthetic] branch means: the fused DOVER score in [0, 1]."""
    logit = (aesthetic - AESTHETIC_SHIFT) / AESTHETIC_SCALE * AESTHETIC_WEIGHT + (
        technical + TECHNICAL_SHIFT
    ) / TECHNICAL_SCALE * TECHNICAL_WEIGHT
    return torch.sigmoid(logit)


@dataclass(frozen=True)
class DoverSettings:
    """How frames become clips, and whether the score carries gradients.

    ``num_frames`` identical frames per image clip (official 32; 4 or 8 are cheaper than
    official and give different scores), ``num_technical_clips`` fragment mosaics per frame
    (official 3), ``seed`` of the fragment offsets, ``differentiable``: keep the autograd graph
    (off by default, as in the reference pipeline, whose 8-bit cast cuts it; a differentiable
    score skips that cast), ``channel_order`` of what DOVER receives (official ``"bgr"``; see
    :mod:`vqe.critics.dover.views`).
    """

    num_frames: int = OFFICIAL_NUM_FRAMES
    num_technical_clips: int = OFFICIAL_TECHNICAL_CLIPS
    seed: int = 0
    differentiable: bool = False
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER

    def __post_init__(self) -> None:
        check_view_settings(self.num_frames, self.num_technical_clips)
        if self.channel_order not in DOVER_CHANNEL_ORDERS:
            raise ValueError(
                f"model_dover.channel_order={self.channel_order!r}: choose "
                f"{OFFICIAL_DOVER_CHANNEL_ORDER!r} (the official pipeline's) or 'rgb' (DOVER as "
                "published, not the challenge's)"
            )

    @property
    def quantise(self) -> bool:
        """The official 8-bit cast before the views (impossible with gradients)."""
        return not self.differentiable

    @property
    def is_official(self) -> bool:
        """The organisers' computation, up to the seeded fragment offsets."""
        return (
            (self.num_frames, self.num_technical_clips)
            == (OFFICIAL_NUM_FRAMES, OFFICIAL_TECHNICAL_CLIPS)
            and self.channel_order == OFFICIAL_DOVER_CHANNEL_ORDER
            and self.quantise
        )

    @property
    def differences(self) -> list[str]:
        """How these settings depart from the official computation, in words (empty if none)."""
        notes = []
        if (self.num_frames, self.num_technical_clips) != (
            OFFICIAL_NUM_FRAMES,
            OFFICIAL_TECHNICAL_CLIPS,
        ):
            notes.append(
                f"{self.num_frames} frames × {self.num_technical_clips} technical clips instead "
                f"of {OFFICIAL_NUM_FRAMES} × {OFFICIAL_TECHNICAL_CLIPS}"
            )
        if self.channel_order != OFFICIAL_DOVER_CHANNEL_ORDER:
            notes.append(f"{self.channel_order.upper()} input instead of the official BGR")
        if not self.quantise:
            notes.append("differentiable, without the official 8-bit cast")
        return notes

    @property
    def tag(self) -> str:
        """What the score depends on besides the weights, for cache keys: ``T32-K3-seed0-bgr-u8``
        (``-float`` without the 8-bit cast)."""
        precision = "u8" if self.quantise else "float"
        return (
            f"T{self.num_frames}-K{self.num_technical_clips}-seed{self.seed}-"
            f"{self.channel_order}-{precision}"
        )


OFFICIAL_SETTINGS = DoverSettings()


class QualityHead(nn.Module):
    """Per-position quality: 1×1×1 conv 768→64, GELU, 1×1×1 conv 64→1.

    The reference applies dropout before each conv; it is inactive in eval mode, where a frozen
    critic always is, so it is left out.
    """

    def __init__(self, in_channels: int = FEATURES, hidden: int = HEAD_HIDDEN) -> None:
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.fc_last = nn.Conv3d(hidden, 1, kernel_size=1)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc_last(self.act(self.fc_hid(features)))


def _check_views(views: Mapping[str, Tensor]) -> None:
    if not isinstance(views, Mapping) or set(views) != set(VIEW_NAMES):
        keys = sorted(views) if isinstance(views, Mapping) else type(views).__name__
        raise ValueError(
            f"DOVER.forward: expected a dict with exactly the keys {list(VIEW_NAMES)}, got "
            f"{keys}; build it with vqe.critics.dover.views.image_views(frames)"
        )
    for name in VIEW_NAMES:
        view = views[name]
        if view.ndim != 5 or view.shape[1] != 3:
            raise ValueError(
                f"DOVER.forward: view {name!r} must be K×3×T×H×W, got {tuple(view.shape)}"
            )


class DOVER(nn.Module):
    """DOVER: technical (Swin3D) and aesthetic (ConvNeXt3D) branches with one head each."""

    def __init__(self) -> None:
        super().__init__()
        self.technical_backbone = SwinTransformer3D()
        self.aesthetic_backbone = ConvNeXt3D()
        self.technical_head = QualityHead()
        self.aesthetic_head = QualityHead()
        #: Identifies the weights (file digest, or the random critic's seed digest); set by
        #: :func:`load_dover`. Cache keys of DOVER scores use it.
        self.weights_digest = ""
        #: The weights file it loaded ("" for a random critic); results name it.
        self.weights_file = ""

    def forward(self, views: Mapping[str, Tensor]) -> list[Tensor]:
        """Normalised views → ``[technical map, aesthetic map]``, each K×1×T/2×H/32×W/32."""
        _check_views(views)
        technical = self.technical_head(self.technical_backbone(views[TECHNICAL]))
        aesthetic = self.aesthetic_head(self.aesthetic_backbone(views[AESTHETIC]))
        return [technical, aesthetic]

    def _check_placement(self, frames: Tensor) -> None:
        reference = next(self.parameters())
        if frames.device != reference.device or frames.dtype != reference.dtype:
            raise ValueError(
                f"DOVER: frames are {frames.dtype} on {frames.device} but the critic is "
                f"{reference.dtype} on {reference.device}; move it with "
                "dover.to(frames.device, frames.dtype) or hold it in a "
                "vqe.critics.frozen.CriticHandle"
            )

    def branch_scores(
        self,
        frames: Tensor,
        settings: DoverSettings = OFFICIAL_SETTINGS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Internal frames (RGB [0, 1], N×3×H×W) → N×2 branch means [technical, aesthetic].

        Without ``settings.differentiable`` this runs without autograd. ``generator`` draws
        the fragment offsets; without one they are the seeded, shared ones (see
        :mod:`vqe.critics.dover.views`).
        """
        check_frames(frames)
        self._check_placement(frames)
        with torch.set_grad_enabled(
            settings.differentiable and torch.is_grad_enabled()
        ):
            views = image_views(
                frames,
                num_frames=settings.num_frames,
                num_technical_clips=settings.num_technical_clips,
                generator=generator,
                seed=settings.seed,
                channel_order=settings.channel_order,
                quantise=settings.quantise,
            )
            technical_map, aesthetic_map = self(views)
            count = frames.shape[0]
            # The technical clips of frame n are rows n·K … n·K+K−1; all maps have one size.
            technical = technical_map.reshape(count, -1).mean(dim=1)
            aesthetic = aesthetic_map.reshape(count, -1).mean(dim=1)
            return torch.stack([technical, aesthetic], dim=1)

    def score(
        self,
        frames: Tensor,
        settings: DoverSettings = OFFICIAL_SETTINGS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Internal frames (RGB [0, 1], N×3×H×W) → N fused DOVER scores in [0, 1]."""
        with torch.set_grad_enabled(
            settings.differentiable and torch.is_grad_enabled()
        ):
            branches = self.branch_scores(frames, settings, generator)
            return fuse_branch_scores(branches[:, 0], branches[:, 1])


# --------------------------------------------------------------------------- loading


def random_weights_digest(seed: int = RANDOM_SEED) -> str:
    """Stand-in for a file digest that keys caches of the seeded random critic."""
    return (
        "random-"
        + hashlib.sha256(f"DOVER random init, seed {seed}".encode()).hexdigest()[:9]
    )


def _random_dover() -> DOVER:
    """A seeded random critic (same weights in every process, so cached scores stay valid).

    Both bias tables get small random values (the reference starts the fragment table at
    zero and fills it from the weights) so that the fragment gate matters, as in the real one.
    """
    with torch.random.fork_rng(
        devices=[]
    ):  # seeded without touching the caller's stream
        torch.manual_seed(RANDOM_SEED)
        model = DOVER()
        for name, parameter in model.named_parameters():
            if name.endswith("position_bias_table"):
                nn.init.trunc_normal_(parameter, std=0.02)
    model.weights_digest = random_weights_digest()
    return model


def _dover_from_file(path: Path) -> DOVER:
    model = DOVER()
    load_strict(model, read_state_dict(path), source=path)
    model.weights_digest = weights_digest(path)
    model.weights_file = str(path)
    return model


def load_dover(path: str | Path | None, allow_random: bool = False) -> DOVER:
    """The frozen DOVER network on the CPU (move it with ``.to()``), loaded once per process.

    ``path`` is the public ``DOVER.pth`` (a plain state dict), loaded strictly. A path that is
    not a file raises :class:`~vqe.critics.weights.CriticWeightsMissingError` naming it; so
    does ``None`` (saying where to get the file and which config key to set), unless
    ``allow_random`` is set: then a seeded random critic is returned with a loud warning that
    its scores are meaningless.
    """
    weights = resolve_weights(
        path,
        allow_random,
        critic="DOVER",
        file_name=WEIGHTS_FILE,
        config_group=CONFIG_GROUP,
        where_to_get=WHERE_TO_GET,
    )
    if weights is None:
        return cast(DOVER, load_once("dover", None, _random_dover))
    network = cast(
        DOVER, load_once("dover", weights, lambda: _dover_from_file(weights))
    )
    log.info("DOVER critic loaded from %s", weights)
    return network


class DoverCritic(nn.Module):
    """The shared frozen DOVER network plus the settings of one use: frames → fused scores.

    Hold it in a :class:`~vqe.critics.frozen.CriticHandle` (it then follows its input's device
    and is not saved with its owner). ``cache_key`` names what its scores depend on.
    """

    def __init__(
        self, network: DOVER, settings: DoverSettings = OFFICIAL_SETTINGS
    ) -> None:
        super().__init__()
        self.network = network
        self.settings = settings

    def forward(
        self, frames: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Internal frames (RGB [0, 1], N×3×H×W) → N fused DOVER scores in [0, 1]."""
        return self.network.score(frames, self.settings, generator)

    @property
    def cache_key(self) -> str:
        """``<weights digest>-T<frames>-K<clips>-seed<seed>``."""
        return f"{self.network.weights_digest}-{self.settings.tag}"

    def extra_repr(self) -> str:
        differences = self.settings.differences
        official = "official" if not differences else "not official: " + "; ".join(differences)
        return f"{self.settings} ({official}), weights {self.network.weights_digest}"


def build_dover(
    weights: str | Path | None = None,
    allow_random_critics: bool = False,
    differentiable: bool = False,
    num_frames: int = OFFICIAL_NUM_FRAMES,
    num_technical_clips: int = OFFICIAL_TECHNICAL_CLIPS,
    seed: int = 0,
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER,
) -> DoverCritic:
    """Hydra entry point for ``configs/model_dover``: the config keys → a frozen
    :class:`DoverCritic` (a new light wrapper each call; the network is shared)."""
    settings = DoverSettings(
        num_frames=num_frames,
        num_technical_clips=num_technical_clips,
        seed=seed,
        differentiable=differentiable,
        channel_order=channel_order,
    )
    if not settings.is_official:
        log.info("DOVER scores with %s: %s", settings, "; ".join(settings.differences))
    return freeze(
        DoverCritic(load_dover(weights, allow_random=allow_random_critics), settings)
    )


__all__ = [
    "DOVER",
    "OFFICIAL_SETTINGS",
    "DoverCritic",
    "DoverSettings",
    "QualityHead",
    "build_dover",
    "fuse_branch_scores",
    "load_dover",
    "random_weights_digest",
]
