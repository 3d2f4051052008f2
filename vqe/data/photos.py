"""A clean-photo pool from the photographs scikit-image, matplotlib, mahotas, scikit-learn and
OpenCV's sample data ship, split into train, validation and test.

The natural colour photographs bundled with scikit-image, the portraits matplotlib and mahotas
ship, the two photographs of scikit-learn and the colour photographs of OpenCV's sample data
(Debian's ``opencv-doc``: :data:`OPENCV_SAMPLES`, or ``$VQE_OPENCV_SAMPLES``) serve as clean
targets (no download, no network): the demo set and :class:`CleanPhotoPairs` degrade them into
inputs. The three splits hold *different photographs* (near-duplicate pairs such as leuvenA/B or
aero1/3 contribute one side only), so a model trained on the train photos and measured on the
others is measured on content it has never seen — not on new crops of memorised pictures.

* ``TEST_PHOTOS`` — the people a video call is about: astronaut (a portrait) and
  ``opencv:messi5`` (a footballer on a pitch), plus :data:`TEST_VIDEOS`: OpenCV's ``vtest.avi``
  (people walking across a campus: real people, real motion). Reported, never chosen on.
* ``VALIDATION_PHOTOS`` — two people: grace_hopper (matplotlib's portrait: a face, a dark
  neutral uniform) and luispedro (mahotas' demo portrait: a man outdoors in evening light,
  glass façade behind); ``opencv:home`` (an indoor room) and ``opencv:leuvenA`` (a street of
  façades): where recipe choices are made.
* ``TRAIN_PHOTOS`` — all the rest: chelsea, coffee, rocket, stereo_motorcycle (left view),
  china, flower and OpenCV's colour photographs (:data:`OPENCV_PHOTOS`: those of its ``data``
  folder, and street scenes, a robin and a plant from its other example folders).

Without the OpenCV samples the ``opencv:`` names are simply left out of the splits (one warning),
so everything still runs on the bundled photographs.

Left out on purpose: the photographs that need a download (skin, lily, eagle, …), the synthetic
or scientific colour images (colorwheel, logo, hubble_deep_field, immunohistochemistry, retina),
``cat`` (the same picture as chelsea, so it would leak across the splits), the grey images,
OpenCV's logos, text, patterns, the painting starry_night, the second views of its stereo and
near-duplicate pairs, and HappyFish (194×259: too small to crop from) —
:func:`load_photo` still loads any offline ``skimage.data`` image as RGB uint8 on request.

:class:`CleanPhotoPairs` is a training dataset over a photo list: each item is a random crop
(random scale, aspect jitter, horizontal flip) of one photo as the clean target ``y``, and
``x = pair_synthesis(y, rng)`` degraded per item, with every draw seeded from
(seed, epoch, index) like :class:`vqe.data.datasets.FrameDataset`.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import os
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import skimage.data
import torch
from torch.utils.data import Dataset

from vqe.conventions import LUMA_WEIGHTS, WELL_EXPOSED_LUMA, rgb_uint8_to_tensor
from vqe.data.datasets import PairSynthesis, item_seed, missing_input_features
from vqe.data.degradations import DegradationPipeline
from vqe.data.sampler import FrameKey
from vqe.data.transforms import Size, TrainTransform, as_size, hflip, resize
from vqe.schema import SUBSET_SYNTHETIC

#: Where OpenCV's sample data lives (Debian's ``opencv-doc``); ``$VQE_OPENCV_SAMPLES`` overrides.
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
#: Prefix of the pool names of OpenCV's samples (``opencv:messi5``).
OPENCV_PREFIX = "opencv:"
#: OpenCV's colour photographs: pool name → file in :func:`opencv_samples`. One view of each
#: stereo / near-duplicate pair (aero1, leuvenA, graf1, rubberwhale1, left). ``scenetext01`` is
#: left out: passers-by fill its corners, and the training split holds no person (03 and 06
#: have one far in the background, a few pixels of face).
OPENCV_PHOTOS: dict[str, str] = {
    f"{OPENCV_PREFIX}{Path(file).stem}": file
    for file in (
        "messi5.jpg", "home.jpg", "leuvenA.jpg", "baboon.jpg", "fruits.jpg", "building.jpg",
        "aero1.jpg", "butterfly.jpg", "apple.jpg", "orange.jpg", "squirrel_cls.jpg", "board.jpg",
        "stuff.jpg", "graf1.png", "smarties.png", "rubberwhale1.png", "licenseplate_motion.jpg",
        "ela_original.jpg", "left.jpg",
    )
} | {
    # Photographs in opencv-doc's other example folders (paths relative to data/): street
    # scenes of the text module, a robin (hfs; 254 pixels high), a potted plant (alphamat).
    # Added for the dull, everyday colours the fruit-and-toy pool lacks (validation, two
    # seeds: frame 20.67 → 20.99 dB, person 19.31 → 19.60; docs/benchmarks.md).
    **{f"{OPENCV_PREFIX}scenetext0{i}": f"../text/scenetext0{i}.jpg" for i in range(2, 7)},
    f"{OPENCV_PREFIX}robin": "../hfs/data/000.jpg",
    f"{OPENCV_PREFIX}plant": "../alphamat/input_images/plant.jpg",
}  # fmt: skip
#: OpenCV's real video: pool name → file (768×576, 10 fps, 795 frames of people walking).
OPENCV_VIDEOS: dict[str, str] = {f"{OPENCV_PREFIX}vtest": "vtest.avi"}
#: Pool names that show people (the faces a call is about).
PEOPLE: frozenset[str] = frozenset(
    {"astronaut", "grace_hopper", "luispedro", f"{OPENCV_PREFIX}messi5", f"{OPENCV_PREFIX}vtest"}
)

_ALL_TEST: tuple[str, ...] = ("astronaut", f"{OPENCV_PREFIX}messi5")
_ALL_VALIDATION: tuple[str, ...] = (
    "grace_hopper",
    "luispedro",
    f"{OPENCV_PREFIX}home",
    f"{OPENCV_PREFIX}leuvenA",
)
_ALL_TRAIN: tuple[str, ...] = (
    "chelsea", "coffee", "rocket", "stereo_motorcycle", "china", "flower",
    *(name for name in OPENCV_PHOTOS if name not in _ALL_TEST + _ALL_VALIDATION),
)  # fmt: skip


def opencv_samples() -> Path:
    """The folder of OpenCV's sample data: ``$VQE_OPENCV_SAMPLES`` or :data:`OPENCV_SAMPLES`."""
    return Path(os.environ.get("VQE_OPENCV_SAMPLES") or OPENCV_SAMPLES).expanduser()


def opencv_file(name: str) -> Path:
    """The file of an ``opencv:`` photo or video name (which need not exist)."""
    file = OPENCV_PHOTOS.get(name) or OPENCV_VIDEOS.get(name)
    if file is None:
        known = sorted(OPENCV_PHOTOS) + sorted(OPENCV_VIDEOS)
        raise KeyError(f"unknown OpenCV sample {name!r}; known: {known}")
    return opencv_samples() / file


def _available(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` without the OpenCV samples that are not on disk (warned about once)."""
    missing = [n for n in names if n.startswith(OPENCV_PREFIX) and not opencv_file(n).is_file()]
    if missing and not _warned_missing:
        _warned_missing.append(True)
        warnings.warn(
            f"OpenCV sample data not found in {opencv_samples()} (install opencv-doc or set "
            f"VQE_OPENCV_SAMPLES); the photo splits leave out {', '.join(missing)}",
            stacklevel=3,
        )
    return tuple(name for name in names if name not in missing)


_warned_missing: list[bool] = []

#: Training photographs (``skimage.data`` function names, :data:`OTHER_BUNDLED` keys or
#: ``opencv:`` names); the only ones any training dataset draws from.
TRAIN_PHOTOS: tuple[str, ...] = _available(_ALL_TRAIN)
#: Validation photographs: recipe choices are made on these.
VALIDATION_PHOTOS: tuple[str, ...] = _available(_ALL_VALIDATION)
#: Test photographs (people): reported, never chosen on.
TEST_PHOTOS: tuple[str, ...] = _available(_ALL_TEST)
#: Test videos (real motion), see :func:`load_video_window`.
TEST_VIDEOS: tuple[str, ...] = _available(tuple(OPENCV_VIDEOS))
#: Every photograph of the pool, train first.
POOL_PHOTOS: tuple[str, ...] = TRAIN_PHOTOS + VALIDATION_PHOTOS + TEST_PHOTOS

assert len(set(POOL_PHOTOS)) == len(POOL_PHOTOS), "the photo splits must be disjoint"

Split = Literal["train", "validation", "test"]
SPLIT_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": TRAIN_PHOTOS,
    "validation": VALIDATION_PHOTOS,
    "test": TEST_PHOTOS,
}


def split_of(name: str) -> str:
    """The split that holds photo or video ``name``; KeyError for one in none."""
    for split, names in (*SPLIT_PHOTOS.items(), ("test", TEST_VIDEOS)):
        if name in names:
            return split
    raise KeyError(f"{name!r} is in no photo split")


#: Prefix of the ``video_id`` / ``source`` of a :class:`CleanPhotoPairs` item of a
#: scikit-image photograph (``skimage.data.chelsea``); see :func:`photo_source`.
PHOTO_SOURCE_PREFIX = "skimage.data."
#: ``skimage.data`` callables that are not images (one of them downloads everything).
_NOT_IMAGES = frozenset({"download_all", "file_hash", "lbp_frontal_face_cascade_filename"})


#: Photographs bundled with another installed dependency: name → (package, file inside the
#: installed package). matplotlib and mahotas ship one colour portrait each, the faces the
#: skimage photos lack (mahotas is a dependency for it; its other demo images are a drawing
#: and the retired "lena"); scikit-learn two photographs of other scenes (a temple, a flower).
OTHER_BUNDLED: dict[str, tuple[str, str]] = {
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "luispedro": ("mahotas", "demos/data/luispedro.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}


#: Image files a photo folder contributes (OpenCV reads them).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _is_path(name: str) -> bool:
    """A pool entry that names a file or folder rather than a bundled photograph."""
    return "/" in name or "\\" in name or Path(name).suffix.lower() in PHOTO_SUFFIXES


def expand_photos(entries: Sequence[str]) -> tuple[str, ...]:
    """Bundled names as they are; a folder becomes its image files (sorted), so a user can
    train on their own clean photographs (``dataset.train_pairs.photos=[/my/photos]``)."""
    expanded: list[str] = []
    for entry in entries:
        entry = str(entry)
        if not _is_path(entry):
            expanded.append(entry)
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            if not files:
                raise ValueError(
                    f"photo folder {path} holds no {'/'.join(PHOTO_SUFFIXES)} files; put the "
                    "clean photographs there"
                )
            expanded += [str(file) for file in files]
        elif path.is_file():
            expanded.append(str(path))
        else:
            raise FileNotFoundError(f"photo {entry}: no such file or folder")
    return tuple(expanded)


def photo_source(name: str) -> str:
    """Where a pool photograph comes from, as items name it: ``skimage.data.<name>``,
    ``<package>:<file>`` for :data:`OTHER_BUNDLED` ones, or the file path of a user's photo."""
    if _is_path(name):
        return name
    if name in OTHER_BUNDLED:
        package, filename = OTHER_BUNDLED[name]
        return f"{package}:{filename}"
    if name.startswith(OPENCV_PREFIX):
        return f"opencv-doc:{opencv_file(name).name}"
    return PHOTO_SOURCE_PREFIX + name


def _decoded_other(name: str) -> np.ndarray:
    package, filename = OTHER_BUNDLED[name]
    path = importlib.resources.files(package).joinpath(filename)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(
            f"photo {name!r}: {package}'s bundled file {filename} could not be read at {path}; "
            f"reinstall {package}"
        )
    return _as_rgb_uint8(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), name)


def _decoded_opencv(name: str) -> np.ndarray:
    if name not in OPENCV_PHOTOS:
        raise KeyError(f"unknown OpenCV photo {name!r}; known: {sorted(OPENCV_PHOTOS)}")
    path = opencv_file(name)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(
            f"photo {name!r}: cannot read {path} (install opencv-doc or set VQE_OPENCV_SAMPLES)"
        )
    return _as_rgb_uint8(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), name)


def _decoded_file(name: str) -> np.ndarray:
    image = cv2.imread(str(Path(name).expanduser()), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"photo {name}: cannot be read as an image (missing or not an image)")
    return _as_rgb_uint8(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), name)


@functools.lru_cache(maxsize=64)
def _decoded(name: str) -> np.ndarray:
    if _is_path(name):
        return _decoded_file(name)
    if name.startswith(OPENCV_PREFIX):
        return _decoded_opencv(name)
    if name in OTHER_BUNDLED:
        return _decoded_other(name)
    loader = getattr(skimage.data, name, None)
    if name.startswith("_") or name in _NOT_IMAGES or not callable(loader):
        raise KeyError(
            f"unknown photo {name!r}: not a scikit-image data function; the pool holds "
            f"train {list(TRAIN_PHOTOS)}, validation {list(VALIDATION_PHOTOS)} and test "
            f"{list(TEST_PHOTOS)}"
        )
    try:
        image = loader()
    except ModuleNotFoundError as error:  # skimage asks for pooch: the file is not bundled
        raise ValueError(
            f"photo {name!r} is not bundled with scikit-image (it needs a download); "
            f"choose one of {list(POOL_PHOTOS)}"
        ) from error
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return _as_rgb_uint8(np.asarray(image), name)


def _as_rgb_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """H×W (grey), H×W×3 or H×W×4 (alpha dropped) of any numeric dtype → H×W×3 uint8."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(
            f"photo {name!r} has shape {image.shape}; expected a grey, RGB or RGBA image"
        )
    image = image[:, :, :3]
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        # skimage float images are in [0, 1].
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"photo {name!r} has dtype {image.dtype}; expected uint8, bool or float")
    image = np.ascontiguousarray(image)
    image.flags.writeable = False  # cached: callers get copies
    return image


def load_photo(name: str) -> np.ndarray:
    """The photograph ``name`` as an H×W×3 RGB uint8 array (a fresh copy):
    ``skimage.data.<name>()``, an :data:`OTHER_BUNDLED` key, an ``opencv:`` name
    (:data:`OPENCV_PHOTOS`) or an image file.

    Grey images are repeated over the three channels and an alpha channel is dropped. Raises
    KeyError for an unknown name and ValueError for one that is not on disk (a scikit-image
    photo that needs a download, a missing OpenCV sample).
    """
    return _decoded(name).copy()


def photo_pool(split: Split) -> list[np.ndarray]:
    """The photographs of ``split`` ("train", "validation" or "test"), in list order, as RGB
    uint8 arrays (the test videos are not photographs: :func:`load_video_window`)."""
    if split not in SPLIT_PHOTOS:
        raise ValueError(
            f"photo_pool: split must be 'train', 'validation' or 'test', got {split!r}"
        )
    return [load_photo(name) for name in SPLIT_PHOTOS[split]]


def load_video_window(name: str, start: int, count: int) -> list[np.ndarray]:
    """Frames ``start … start + count − 1`` of a video (an :data:`OPENCV_VIDEOS` name or a file)
    as RGB uint8 arrays; ValueError naming the file when it cannot be read or is too short."""
    path = opencv_file(name) if name.startswith(OPENCV_PREFIX) else Path(name).expanduser()
    if start < 0 or count < 1:
        raise ValueError(f"video {path}: need start >= 0 and count >= 1, got {start}, {count}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"video {path}: cannot be opened (missing or not a video)")
        frames: list[np.ndarray] = []
        index = 0
        # Decoded in order: seeking is not frame-exact in every container.
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                raise ValueError(
                    f"video {path}: ended after {index} frames; frames {start}–"
                    f"{start + count - 1} were asked for"
                )
            if index >= start:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
        return frames
    finally:
        capture.release()


def photo_tensor(name: str) -> torch.Tensor:
    """A photograph as a 3×H×W RGB float tensor in [0, 1] (vqe's frame convention)."""
    return rgb_uint8_to_tensor(load_photo(name))


def mean_luma(image: torch.Tensor) -> float:
    """Mean BT.601 luma of a 3×H×W RGB image in [0, 1]."""
    weights = torch.as_tensor(LUMA_WEIGHTS, dtype=image.dtype).view(3, 1, 1)
    return float((image * weights).sum(0).mean())


def _luma_levels(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, weights) with ``mean_luma(image ** g) == sum(weights * values ** g)``: the
    distinct values of each channel, weighted by luma weight × count / pixels. A photo decoded
    from uint8 has at most 3 × 256 of them, so the bisection below costs nothing per step."""
    pixels = image[0].numel()
    values, weights = [], []
    for channel, weight in zip(image, LUMA_WEIGHTS, strict=True):
        distinct, counts = torch.unique(channel, return_counts=True)
        values.append(distinct.double())
        weights.append(counts.double() * (float(weight) / pixels))
    return torch.cat(values), torch.cat(weights)


def balance_towards_grey(image: torch.Tensor, strength: float) -> torch.Tensor:
    """Move a photo's colour balance ``strength`` of the way (in log gain) towards grey: each
    channel scaled by (g / mean_c) ** strength, g the geometric mean of the channel means.

    Why: the clean pool's scenes are yellow on average (fruit, autumn leaves, a cat, coffee:
    mean b* +13), so a model trained on them learns to make frames yellow — on people it adds
    orange to skin. Half-way to grey leaves each photo's own colours but takes the pool's bias
    off the colour a degraded frame is corrected to."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"balance_towards_grey: strength must lie in [0, 1], got {strength}")
    means = image.clamp(0.0, 1.0).mean(dim=(1, 2)).clamp_min(1e-4)
    grey = means.log().mean().exp()
    gains = (grey / means) ** strength
    return (image * gains[:, None, None]).clamp(0.0, 1.0)


def toward_luma(image: torch.Tensor, luma: float, strength: float) -> float:
    """The mean luma ``strength`` of the way from the image's own to ``luma``, in log luma
    (1 gives ``luma``, 0 the image's own; a black or white image gives ``luma``)."""
    own = mean_luma(image.clamp(0.0, 1.0))
    if not 0.0 < own < 1.0:
        return luma
    return math.exp((1.0 - strength) * math.log(own) + strength * math.log(luma))


def reexpose(image: torch.Tensor, luma: float, tolerance: float = 1e-4) -> torch.Tensor:
    """``image ** gamma`` with the one gamma that brings its mean luma to ``luma``.

    A tone curve rather than a gain: it brightens or darkens without clipping highlights and
    keeps black and white where they are. A flat black or white image is returned unchanged.
    """
    if not 0.0 < luma < 1.0:
        raise ValueError(f"reexpose: luma must lie in (0, 1), got {luma}")
    image = image.clamp(0.0, 1.0)
    if not 0.0 < mean_luma(image) < 1.0:
        return image
    values, weights = _luma_levels(image)
    # Mean luma falls monotonically with gamma: bisect log-gamma within [1/64, 64].
    low, high = -math.log(64.0), math.log(64.0)
    for _ in range(60):
        middle = 0.5 * (low + high)
        current = float((weights * values ** math.exp(middle)).sum())
        if abs(current - luma) < tolerance:
            break
        low, high = (middle, high) if current > luma else (low, middle)
    return image ** math.exp(middle)


# --------------------------------------------------------------------------- training pairs


def _check_range(value: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or not low < pair[0] <= pair[1] <= high:
        raise ValueError(
            f"CleanPhotoPairs.{name}: expected [min, max] in ({low}, {high}], got {value!r}"
        )
    return pair[0], pair[1]


class CleanPhotoPairs(Dataset[dict[str, Any]]):
    """Degraded/clean pairs cut from clean photographs, different every epoch.

    Item ``i`` of epoch ``e`` takes photo ``photos[i % len(photos)]`` (so every batch mixes the
    photos), cuts a window whose side is ``scale`` × the largest window of the crop's aspect that
    fits (the aspect jittered by ``ratio``), resizes it to ``crop_size`` (antialiased, so a large
    window becomes a zoomed-out view), flips it with ``hflip_p``, and degrades it:
    ``x = pair_synthesis(y, rng)``. All draws come from (seed, e, i).

    Items look like :class:`vqe.data.datasets.FrameDataset` items of the ``synthetic`` subset
    (``video_id`` = ``skimage.data.<photo>``, ``frame_index`` = i), so the batch sampler, the
    module and the losses treat them as supervised synthetic frames.

    Args:
        photos: the clean photographs: ``skimage.data`` function names or
            :data:`OTHER_BUNDLED` keys (default :data:`TRAIN_PHOTOS`), image files, or folders
            of image files (expanded by :func:`expand_photos`).
        crop_size: output (height, width) or int.
        samples_per_epoch: items per epoch (the dataset length).
        scale: [min, max] side fraction of the window (1 = the largest window that fits).
        ratio: [min, max] aspect of the window relative to the crop's, drawn log-uniformly.
        hflip_p: probability of a horizontal flip.
        pair_synthesis: the degradation; None uses :class:`DegradationPipeline` defaults
            (``configs/degradation/realesrgan.yaml`` mirrors them).
        seed: base of the per-item seeds.
        reference_luma: every photo is first re-exposed (:func:`reexpose`) to this mean luma
            (default :data:`~vqe.conventions.WELL_EXPOSED_LUMA`), so the targets teach one
            exposure — that of a well-lit frame — rather than each photograph's own: the
            degradations dim every frame to about the same mean, so the original brightness
            cannot be read from the input, and a dusk scene among four photos would teach the
            model to keep frames dark. Windows keep their brightness relative to the whole
            photo. None keeps the photos as they are.
        reexpose_strength: how far, in log luma, each photo's mean moves towards
            ``reference_luma`` (1: all the way, one exposure for every scene; 0.5: half-way,
            keeping part of each scene's own brightness, which a dim input cannot tell).
        neutral_balance: before re-exposure, each photo's colour balance is moved this far
            (0–1, in log gain) towards grey (:func:`balance_towards_grey`), so that the pool's
            colour bias does not become the model's; 0 keeps the photos' colours.
        mix_p: probability that a second photo's window replaces one side of the target (a
            vertical or horizontal cut at 30–70 %) before the degradation, which then acts on
            the composite: with a handful of photographs, the LUT's weight predictor would
            otherwise learn each photo's colours rather than the cast; mixed scenes pair the
            same degradations with many more colour statistics. 0 turns it off.
    """

    def __init__(
        self,
        photos: Sequence[str] = TRAIN_PHOTOS,
        crop_size: int | Sequence[int] = 128,
        samples_per_epoch: int = 256,
        scale: Sequence[float] = (0.35, 1.0),
        ratio: Sequence[float] = (0.8, 1.25),
        hflip_p: float = 0.5,
        pair_synthesis: PairSynthesis | None = None,
        seed: int | None = 0,
        reference_luma: float | None = WELL_EXPOSED_LUMA,
        mix_p: float = 0.0,
        neutral_balance: float = 0.0,
        reexpose_strength: float = 1.0,
    ) -> None:
        self.photos = expand_photos(photos)
        if not self.photos:
            raise ValueError(
                "CleanPhotoPairs: photos is empty; give skimage.data names, image files or "
                "folders of clean photographs"
            )
        size = as_size(crop_size, "CleanPhotoPairs.crop_size")
        assert size is not None
        if samples_per_epoch < 1:
            raise ValueError(
                f"CleanPhotoPairs.samples_per_epoch must be >= 1, got {samples_per_epoch}"
            )
        for name, p in (
            ("hflip_p", hflip_p),
            ("mix_p", mix_p),
            ("reexpose_strength", reexpose_strength),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"CleanPhotoPairs.{name} must be in [0, 1], got {p}")
        self.crop_size: Size = size
        self.samples_per_epoch = int(samples_per_epoch)
        self.scale = _check_range(scale, "scale", 0.0, 1.0)
        self.ratio = _check_range(ratio, "ratio", 0.0, 1e3)
        self.hflip_p = float(hflip_p)
        self.mix_p = float(mix_p)
        self.pair_synthesis: PairSynthesis = pair_synthesis or DegradationPipeline()
        self.seed = 0 if seed is None else int(seed)
        #: Set by :meth:`deliver_input_features`: items then carry a NaN ``vqa_input`` row.
        self.input_feature_size: int | None = None
        self.reference_luma = None if reference_luma is None else float(reference_luma)
        self.neutral_balance = float(neutral_balance)
        # Decoded once here (and so in the main process, before workers fork).
        self._images = self._prepare_targets(float(reexpose_strength))
        # What the datamodule's loader reads: every item has this size, so batches stack.
        self.transform = TrainTransform(self.crop_size)
        self.csv_path = f"CleanPhotoPairs({', '.join(self.photos)})"  # named in loader errors

    def _prepare_targets(self, reexpose_strength: float) -> list[torch.Tensor]:
        """The photos decoded, balanced towards grey and re-exposed as configured."""
        images = [photo_tensor(name) for name in self.photos]
        for name, image in zip(self.photos, images, strict=True):
            if min(image.shape[1:]) < 16:
                raise ValueError(
                    f"CleanPhotoPairs: photo {name!r} is too small ({tuple(image.shape)})"
                )
        if self.neutral_balance:
            images = [balance_towards_grey(im, self.neutral_balance) for im in images]
        if self.reference_luma is not None:
            images = [
                reexpose(im, toward_luma(im, self.reference_luma, reexpose_strength))
                for im in images
            ]
        return images

    def deliver_input_features(self, size: int) -> None:
        """Give every item a ``vqa_input`` of ``size`` NaNs, so that batches mixing these
        items with stored frames that carry cached VQA features stack: a generated input is
        always encoded on the batch."""
        self.input_feature_size = int(size)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def has_target(self, row: int) -> bool:
        return True

    def group_keys(self, by_size: bool) -> list[Hashable]:
        """One key for every item: all are supervised synthetic frames of ``crop_size``."""
        key: Hashable = (
            (SUBSET_SYNTHETIC, True, *self.crop_size) if by_size else (SUBSET_SYNTHETIC, True)
        )
        return [key] * len(self)

    def _window(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """A random window of ``image`` resized to ``crop_size``."""
        height, width = image.shape[1:]
        out_h, out_w = self.crop_size
        log_ratio = rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = out_w / out_h * math.exp(log_ratio)  # window width / height
        largest_h = min(height, width / aspect)
        window_h = max(1, min(height, round(largest_h * rng.uniform(*self.scale))))
        window_w = max(1, min(width, round(window_h * aspect)))
        top = int(rng.integers(0, height - window_h + 1))
        left = int(rng.integers(0, width - window_w + 1))
        window = image[:, top : top + window_h, left : left + window_w]
        return resize(window[None], self.crop_size)[0].clamp(0.0, 1.0)

    def _mixed(self, target: torch.Tensor, photo: int, rng: np.random.Generator) -> torch.Tensor:
        """``target`` with one side (probability :attr:`mix_p`) taken from a window of another
        photo: a vertical or horizontal cut at 30–70 % of the side."""
        if rng.random() >= self.mix_p:
            return target
        other = (photo + 1 + int(rng.integers(len(self._images) - 1))) % len(self._images)
        patch = self._window(self._images[other], rng)
        mixed = target.clone()
        height, width = target.shape[1:]
        if rng.random() < 0.5:
            cut = round(width * rng.uniform(0.3, 0.7))
            mixed[:, :, cut:] = patch[:, :, cut:]
        else:
            cut = round(height * rng.uniform(0.3, 0.7))
            mixed[:, cut:, :] = patch[:, cut:, :]
        return mixed

    def __getitem__(self, key: int | FrameKey) -> dict[str, Any]:
        index, epoch = (key.index, key.epoch) if isinstance(key, FrameKey) else (int(key), 0)
        if not 0 <= index < len(self):
            raise IndexError(f"CleanPhotoPairs: index {index} out of range [0, {len(self)})")
        # A third stream for the mix: the first two (and so every unmixed item) stay as they are.
        geometry, degradation, mixing = item_seed(self.seed, epoch, index).spawn(3)
        rng = np.random.default_rng(geometry)
        photo = index % len(self.photos)
        y = self._window(self._images[photo], rng)
        if rng.random() < self.hflip_p:
            y = hflip(y)
        if self.mix_p > 0 and len(self._images) > 1:
            y = self._mixed(y, photo, np.random.default_rng(mixing))
        y = y.contiguous()
        x = self.pair_synthesis(y, np.random.default_rng(degradation))
        if tuple(x.shape) != tuple(y.shape):
            raise ValueError(
                f"pair_synthesis returned shape {tuple(x.shape)} for a photo crop of "
                f"{tuple(y.shape)}; it must keep the frame size"
            )
        name = self.photos[photo]
        return {
            "x": x,
            "y": y,
            "subset": SUBSET_SYNTHETIC,
            "video_id": photo_source(name),
            "frame_index": index,
            "has_target": True,
            "source": photo_source(name),
            # Not a stored frame: the critics score DOVER(x) on the batch, never from a cache.
            "stored_input": "",
            "dover_input": math.nan,  # a generated input: the critics score it on the batch
        } | (
            {"vqa_input": missing_input_features(self.input_feature_size)}
            if self.input_feature_size is not None
            else {}
        )


__all__ = [
    "OPENCV_PHOTOS",
    "OPENCV_SAMPLES",
    "OPENCV_VIDEOS",
    "PEOPLE",
    "POOL_PHOTOS",
    "TEST_PHOTOS",
    "TEST_VIDEOS",
    "TRAIN_PHOTOS",
    "VALIDATION_PHOTOS",
    "CleanPhotoPairs",
    "load_photo",
    "load_video_window",
    "opencv_file",
    "opencv_samples",
    "split_of",
    "mean_luma",
    "expand_photos",
    "photo_pool",
    "photo_source",
    "photo_tensor",
    "reexpose",
]
