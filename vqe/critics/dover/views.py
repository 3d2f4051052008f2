"""DOVER's two views of an image, built from internal frames (RGB float in [0, 1], N×3×H×W).

An image is a clip of ``num_frames`` identical frames (the official setting is 32).

* technical view: a 7×7 mosaic of 32×32 fragments (224×224). The frame is cut into a 7×7 grid
  of cells (cell i starts at ``min(i·(H // 7), H − 32)``); each fragment sits at a random
  offset inside its cell (``[0, H // 7 − 32)``, 0 when the cell is no taller than a
  fragment). Frames whose short side is under 224 pixels are first upsampled bilinearly so it
  is 224, and the grid is laid on the upsampled frame (the reference lays it with the size
  before upsampling, which only samples the top-left part; the two agree for frames of at least
  224×224, such as all challenge frames). ``num_technical_clips`` (officially 3) mosaics with independent offsets are made per
  frame; they go along the batch axis (K = N·clips), as the reference splits its 3×32 sampled
  frames into 3 clips.
* aesthetic view: the whole frame resized to 224×224 (bilinear, without antialiasing, as the
  starter's torchvision 0.14 ``Resize`` does on tensors); one clip per frame (K = N).

What DOVER receives follows the official pipeline (starter ``label_dover.py`` and
``dover_datasets.py::spatial_temporal_view_decomposition_for_images``): the frame in **BGR**
order (OpenCV frames go in unconverted), as 0–255 values cast to 8 bits by **truncation**, the
aesthetic resize rounded back to 8 bits, and only then normalised with the ImageNet statistics
(:func:`vqe.conventions.normalise_dover`). The 8-bit steps (``quantise=True``) are what
non-differentiable scoring does; a differentiable DOVER skips them (floor and round carry no
gradient) and so differs from the official score by at most the rounding of one 8-bit level.
The opposite channel order (``channel_order="rgb"``, DOVER as published) is an explicit opt-in.

Fragment offsets come from an explicit :class:`torch.Generator`. Without one, a generator
seeded with ``seed`` draws one set of offsets shared by every frame of the call, so a frame's
score depends only on the frame (not on its batch) and an input frame and its enhanced version
are sampled at the same places.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vqe.conventions import (
    OFFICIAL_DOVER_CHANNEL_ORDER,
    UINT8_MAX,
    DoverChannelOrder,
    normalise_dover,
    to_dover_pixels,
)

FRAGMENT_GRID = 7
FRAGMENT_SIZE = 32
VIEW_SIZE = FRAGMENT_GRID * FRAGMENT_SIZE  # 224
#: Official image settings: an image is a clip of 32 identical frames; 3 technical clips.
OFFICIAL_NUM_FRAMES = 32
OFFICIAL_TECHNICAL_CLIPS = 3
TECHNICAL = "technical"
AESTHETIC = "aesthetic"
VIEW_NAMES = (TECHNICAL, AESTHETIC)
#: Frames read from 8-bit files come back from ``v / 255 · 255`` a few float32 ulps off ``v``;
#: this much is added before truncating so that they keep their value, as in the starter.
TRUNCATION_TOLERANCE = 1e-4


def check_frames(frames: Tensor) -> None:
    """Raise a clear error unless ``frames`` is an N×3×H×W floating-point tensor."""
    if not isinstance(frames, Tensor):
        raise TypeError(
            f"DOVER: frames must be a torch.Tensor, got {type(frames).__name__}"
        )
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"DOVER: frames must be N×3×H×W internal RGB in [0, 1], got shape "
            f"{tuple(frames.shape)}; add a batch axis with frames.unsqueeze(0) for one frame"
        )
    if not frames.is_floating_point():
        raise ValueError(
            f"DOVER: frames must be floating point RGB in [0, 1], got {frames.dtype}; convert "
            "uint8 images with vqe.conventions.rgb_uint8_to_tensor / bgr_uint8_to_tensor"
        )
    if frames.shape[0] == 0:
        raise ValueError("DOVER: got an empty batch of frames")


def dover_pixels(
    frames: Tensor,
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER,
    quantise: bool = True,
) -> Tensor:
    """Internal N×3×H×W frames → the 0–255 values DOVER's views are cut from.

    ``quantise`` applies the starter's ``.to(torch.uint8)``: truncation to whole levels. Values
    are clamped to [0, 255] first; a uint8 cast of out-of-range floats wraps (undefined in
    torch), which no enhancer should rely on.
    """
    pixels = to_dover_pixels(frames, channel_order)
    if quantise:
        pixels = truncate_to_uint8_levels(pixels)
    return pixels


def truncate_to_uint8_levels(pixels: Tensor) -> Tensor:
    """0–255 floats → whole levels by truncation (a float → uint8 cast), staying float."""
    return (pixels.clamp(0.0, UINT8_MAX) + TRUNCATION_TOLERANCE).floor().clamp(max=UINT8_MAX)


def upsample_to_view(pixels: Tensor, quantise: bool = False) -> Tensor:
    """Bilinearly upsample so that the short side is at least :data:`VIEW_SIZE` (the starter
    casts the result back to 8 bits by truncation; so does ``quantise``)."""
    height, width = pixels.shape[-2:]
    ratio = min(height, width) / VIEW_SIZE
    if ratio >= 1:
        return pixels
    size = (max(VIEW_SIZE, round(height / ratio)), max(VIEW_SIZE, round(width / ratio)))
    upsampled = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
    return truncate_to_uint8_levels(upsampled) if quantise else upsampled


def _cell_starts(length: int) -> Tensor:
    step = length // FRAGMENT_GRID
    return torch.tensor(
        [min(step * i, length - FRAGMENT_SIZE) for i in range(FRAGMENT_GRID)]
    )


def _random_offsets(
    length: int, shape: tuple[int, ...], generator: torch.Generator
) -> Tensor:
    room = length // FRAGMENT_GRID - FRAGMENT_SIZE
    if room <= 0:
        return torch.zeros(shape, dtype=torch.long)
    return torch.randint(room, shape, generator=generator)


def sample_fragment_origins(
    height: int,
    width: int,
    num_frames: int,
    num_clips: int,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Top-left corners of every fragment: two (num_frames·num_clips)×7×7 long tensors (rows,
    columns) on the CPU, for a frame of ``height``×``width`` (already upsampled)."""
    if generator is None:
        # One set of offsets for all frames, the same on every call.
        shared = torch.Generator().manual_seed(seed)
        rows = _random_offsets(
            height, (num_clips, FRAGMENT_GRID, FRAGMENT_GRID), shared
        )
        cols = _random_offsets(width, (num_clips, FRAGMENT_GRID, FRAGMENT_GRID), shared)
        rows, cols = rows.repeat(num_frames, 1, 1), cols.repeat(num_frames, 1, 1)
    else:
        shape = (num_frames * num_clips, FRAGMENT_GRID, FRAGMENT_GRID)
        rows = _random_offsets(height, shape, generator)
        cols = _random_offsets(width, shape, generator)
    rows = rows + _cell_starts(height)[None, :, None]
    cols = cols + _cell_starts(width)[None, None, :]
    return rows, cols


def fragment_mosaic(frames: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Gather the 7×7 fragments at ``rows``/``cols`` (M×7×7 corners, M a multiple of N) into
    M×3×224×224 mosaics; mosaic m is cut from frame ``m // (M // N)``."""
    num_mosaics = rows.shape[0]
    clips_per_frame = num_mosaics // frames.shape[0]
    device = frames.device
    within = torch.arange(FRAGMENT_SIZE, device=device)
    # Pixel p of the mosaic lies in cell p // 32 at position p % 32 inside the fragment.
    cell = torch.arange(VIEW_SIZE, device=device) // FRAGMENT_SIZE
    inside = within.repeat(FRAGMENT_GRID)
    rows, cols = rows.to(device), cols.to(device)
    source_rows = rows[:, cell[:, None], cell[None, :]] + inside[:, None]  # M×224×224
    source_cols = cols[:, cell[:, None], cell[None, :]] + inside[None, :]
    frame_of = torch.arange(num_mosaics, device=device) // clips_per_frame
    picked = frames[frame_of[:, None, None], :, source_rows, source_cols]  # M×224×224×3
    return picked.permute(0, 3, 1, 2)


def technical_view(
    frames: Tensor,
    num_clips: int = OFFICIAL_TECHNICAL_CLIPS,
    generator: torch.Generator | None = None,
    seed: int = 0,
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER,
    quantise: bool = True,
) -> Tensor:
    """Internal N×3×H×W frames → (N·num_clips)×3×224×224 normalised fragment mosaics."""
    check_frames(frames)
    pixels = upsample_to_view(dover_pixels(frames, channel_order, quantise), quantise)
    height, width = pixels.shape[-2:]
    rows, cols = sample_fragment_origins(
        height, width, pixels.shape[0], num_clips, generator=generator, seed=seed
    )
    return normalise_dover(fragment_mosaic(pixels, rows, cols))


def aesthetic_view(
    frames: Tensor,
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER,
    quantise: bool = True,
) -> Tensor:
    """Internal N×3×H×W frames → N×3×224×224 normalised resizes (rounded to 8 bits when
    ``quantise``, as torchvision's resize of a uint8 tensor rounds)."""
    check_frames(frames)
    resized = F.interpolate(
        dover_pixels(frames, channel_order, quantise),
        size=(VIEW_SIZE, VIEW_SIZE),
        mode="bilinear",
        align_corners=False,
        antialias=False,
    )
    return normalise_dover(resized.round() if quantise else resized)


def check_view_settings(num_frames: int, num_technical_clips: int) -> None:
    """Raise a clear error for clip settings the network cannot take."""
    if not isinstance(num_frames, int) or num_frames < 2 or num_frames % 2:
        raise ValueError(
            f"DOVER: num_frames must be an even integer ≥ 2 (both backbones start with a "
            f"2-frame temporal patch), got {num_frames!r}; the official setting is "
            f"{OFFICIAL_NUM_FRAMES}"
        )
    if not isinstance(num_technical_clips, int) or num_technical_clips < 1:
        raise ValueError(
            f"DOVER: num_technical_clips must be an integer ≥ 1, got {num_technical_clips!r}; "
            f"the official setting is {OFFICIAL_TECHNICAL_CLIPS}"
        )


def as_clip(images: Tensor, num_frames: int) -> Tensor:
    """K×3×H×W images → K×3×T×H×W clips of ``num_frames`` identical frames (a view, no copy)."""
    return images.unsqueeze(2).expand(-1, -1, num_frames, -1, -1)


def image_views(
    frames: Tensor,
    num_frames: int = OFFICIAL_NUM_FRAMES,
    num_technical_clips: int = OFFICIAL_TECHNICAL_CLIPS,
    generator: torch.Generator | None = None,
    seed: int = 0,
    channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER,
    quantise: bool = True,
) -> dict[str, Tensor]:
    """Both views of N internal frames, as the DOVER network's ``forward`` takes them:
    ``{'technical': (N·clips)×3×T×224×224, 'aesthetic': N×3×T×224×224}``."""
    check_view_settings(num_frames, num_technical_clips)
    technical = technical_view(
        frames,
        num_technical_clips,
        generator=generator,
        seed=seed,
        channel_order=channel_order,
        quantise=quantise,
    )
    aesthetic = aesthetic_view(frames, channel_order=channel_order, quantise=quantise)
    return {
        TECHNICAL: as_clip(technical, num_frames),
        AESTHETIC: as_clip(aesthetic, num_frames),
    }


__all__ = [
    "AESTHETIC",
    "FRAGMENT_GRID",
    "FRAGMENT_SIZE",
    "OFFICIAL_NUM_FRAMES",
    "OFFICIAL_TECHNICAL_CLIPS",
    "TECHNICAL",
    "VIEW_NAMES",
    "VIEW_SIZE",
    "aesthetic_view",
    "as_clip",
    "check_frames",
    "check_view_settings",
    "dover_pixels",
    "fragment_mosaic",
    "image_views",
    "sample_fragment_origins",
    "technical_view",
    "truncate_to_uint8_levels",
    "upsample_to_view",
]
