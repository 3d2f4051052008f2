"""The embedded demo set: a tiny dataset in the official layout, built offline in seconds.

``vqe demo OUT_DIR`` (:mod:`vqe.cli.demo`; :func:`build_demo`, then :func:`index_demo`) writes::

    train/supervised/synthetic/video_0001/{x,y}/frame_0001.jpg …   3 paired jpg clips, 8 frames
    test/supervised/synthetic/video_0004/{x,y}/frame_0001.jpg …    2 more (test photos)
    train/supervised/real/video_0006_x.mp4 + video_0006_y.mp4 …     3 paired clips, 12 frames
    train/unsupervised/video_0009_x.mp4 …                           3 inputs without target,
    test/unsupervised/video_0012_x.mp4 …                            10 frames at 20 fps; 2 more
    train/supervised/synthetic/video_0014/ … video_0015/            2 validation clips (test photos)
    demo.json                                                       what was made, the seed

and then indexes it with :func:`vqe.dataprep.build.build_dataset` (frames of the mp4s,
``train.csv``, ``test.csv``). Video numbers run on across subsets (0001–0015), so every
``video_id`` of the index is unique; frames are numbered from 0001 like the builder's.

Every clip is a slow pan and zoom across one of the colour photographs of the clean-photo pool
(:mod:`vqe.data.photos`, bundled with scikit-image, no network), at 320×180 (16:9, even sides).
**Training clips come from** ``TRAIN_PHOTOS`` **only, the validation clips (the last two
synthetic videos of** ``train/``, **held out by** ``configs/dataset/demo.yaml``**) from**
``VALIDATION_PHOTOS`` **and every test clip from** ``TEST_PHOTOS`` — each limited to the photos
the Python packages ship, so the set is the same on every machine — so validation and test
measure unseen photographs, and the two are different ones. Besides the
stored training rows, the demo run trains on :class:`vqe.data.photos.CleanPhotoPairs`: fresh
crops of the train photos every epoch, degraded per sample with
:func:`vqe.data.degradations.training_degradation` (the look of the synthetic clips below), so
that it learns the correction instead of memorising a few stored frames. The degradations
(:mod:`vqe.data.degradations`):

* **synthetic** — ``y`` is the clean crop of a well-lit photo; ``x`` is the same frame relit to
  look HDRI-only lit: white-balance cast, uneven smooth light field, tone curve and one exposure
  gain per clip to a mean intensity of 0.16–0.24 (near the challenge's 50/255), a light flicker
  (a 3–8 % gain wobble at 2–5 Hz), then Real-ESRGAN blur / resize / noise / JPEG with ranges
  scaled to the small frames (:data:`vqe.data.degradations.SYNTHETIC_RANGES`). Both sides are
  stored as JPEG at quality 90.
* **real** — ``x`` is webcam-like: a milder relight (mean 0.18–0.32), flicker, noise and an H.264
  encode at CRF 28–36 (the storage encode is the codec degradation); ``y`` is the clean clip
  after a global auto-adjustment (:func:`auto_adjust`: grey-world white balance, a levels stretch
  and a gamma to mean 0.45, one setting for the whole clip), standing in for the production
  AutoAdjust target, stored at the official CRF 18, 30 fps.
* **unsupervised** — ``x`` as for real, at 20 fps (the real webcam clips run at ~19 fps) so that
  the builder's frame-rate resampling is exercised.

Everything is drawn from ``np.random.default_rng([seed, subset, video])``: a seed gives the same
jpg bytes and the same decoded mp4 frames on every build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage
import torch

from vqe.atomic import atomic_write_text
from vqe.conventions import (
    rgb_uint8_to_tensor,
    tensor_to_bgr_uint8,
    tensor_to_rgb_uint8,
)
from vqe.data.degradations import (
    SYNTHETIC_RANGES,
    apply_params,
    describe_params,
    image_to_tensor,
    sample_params,
    tensor_to_image,
    write_reproducible_video,
)
from vqe.data.photos import OPENCV_PREFIX, TEST_PHOTOS, TRAIN_PHOTOS, VALIDATION_PHOTOS
from vqe.data.photos import load_photo as load_photo_uint8
from vqe.dataprep.layout import (
    SOURCE_FRAMES_DIR,
    SOURCE_TAG,
    SUBSET_DIRS,
    TARGET_FRAMES_DIR,
    TARGET_TAG,
    VIDEO_SUFFIX,
)
from vqe.schema import (
    DEMO_MANIFEST,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
    TEST_CSV,
    TRAIN_CSV,
)
from vqe.video import OFFICIAL_CRF

logger = logging.getLogger(__name__)

DEMO_NAME = "vqe-demo"
#: Bumped whenever the set's content changes: an older set is rebuilt by :func:`ensure_demo`.
DEMO_VERSION = 5
#: Environment variable that overrides :func:`default_demo_dir`.
DEMO_DIR_ENV = "VQE_DEMO_DIR"

FRAME_WIDTH, FRAME_HEIGHT = 320, 180
JPEG_QUALITY = 90
#: Mean intensity the auto-adjusted real targets are brought to.
AUTO_ADJUST_MEAN = 0.45


#: The photographs the demo is made of (``skimage.data`` names), train photos first.
def _bundled(names: tuple[str, ...]) -> tuple[str, ...]:
    """The photographs the Python packages ship: the demo set is the same on every machine,
    whether or not OpenCV's samples (a Debian package) are installed."""
    return tuple(name for name in names if not name.startswith(OPENCV_PREFIX))


DEMO_TRAIN, DEMO_VALIDATION, DEMO_TEST = map(
    _bundled, (TRAIN_PHOTOS, VALIDATION_PHOTOS, TEST_PHOTOS)
)
PHOTOS: tuple[str, ...] = DEMO_TRAIN + DEMO_VALIDATION + DEMO_TEST
#: Train photos bright enough to serve as the well-lit side of a synthetic pair (rocket is dark).
WELL_LIT_TRAIN = tuple(name for name in DEMO_TRAIN if name != "rocket")


@dataclass(frozen=True)
class SubsetPlan:
    split: str
    subset: str
    videos: int
    frames: int
    fps: int
    photos: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.split}/{SUBSET_DIRS[self.subset]}"


#: Synthetic validation videos: the last ones of train/supervised/synthetic, from test photos.
VAL_VIDEOS = 2

PLAN = (
    SubsetPlan("train", SUBSET_SYNTHETIC, videos=3, frames=8, fps=30, photos=WELL_LIT_TRAIN),
    SubsetPlan("test", SUBSET_SYNTHETIC, videos=2, frames=8, fps=30, photos=DEMO_TEST),
    SubsetPlan("train", SUBSET_REAL, videos=3, frames=12, fps=30, photos=DEMO_TRAIN),
    SubsetPlan("train", SUBSET_UNSUPERVISED, videos=3, frames=10, fps=20, photos=DEMO_TRAIN),
    SubsetPlan("test", SUBSET_UNSUPERVISED, videos=2, frames=10, fps=20, photos=DEMO_TEST),
    # Numbered last, so "the last VAL_VIDEOS synthetic videos" of train.csv are these
    # (configs/dataset/demo.yaml holds them out as the validation set) and the other videos
    # keep the numbers they had before the validation clips were added.
    SubsetPlan(
        "train", SUBSET_SYNTHETIC, videos=VAL_VIDEOS, frames=8, fps=30, photos=DEMO_VALIDATION
    ),
)

#: Webcam look for the real and unsupervised inputs; the sampled CRF is used by the mp4 encode.
WEBCAM_RANGES = dataclasses.replace(
    SYNTHETIC_RANGES,
    uneven_light_prob=0.5,
    target_mean=(0.18, 0.32),
    blur_prob=0.5,
    kernel_size=(5, 9),
    blur_sigma=(0.2, 1.0),
    resize_probs=(0.0, 0.5, 0.5),
    resize_scale=(0.6, 1.0),
    jpeg_prob=0.0,
    h264_prob=1.0,
    h264_crf=(28, 36),
)


# --------------------------------------------------------------------------- clips


@functools.lru_cache(maxsize=len(PHOTOS))
def load_photo(name: str) -> np.ndarray:
    """A demo photograph as H×W×3 float32 RGB in [0, 1] (cached, so read-only)."""
    if name not in PHOTOS:
        raise KeyError(f"unknown demo photo {name!r}; choose one of {sorted(PHOTOS)}")
    photo = tensor_to_image(rgb_uint8_to_tensor(load_photo_uint8(name)))
    photo.flags.writeable = False
    return photo


def pan_zoom_clip(
    photo: np.ndarray, num_frames: int, width: int, height: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """A slow pan and zoom across ``photo``: ``num_frames`` crops of aspect width:height, resampled
    to width×height. The crop starts at 70–95 % of the largest crop that fits, zooms by up to 8 %
    and drifts by up to 4 % of the photo over the clip."""
    aspect = width / height
    # Scale the photo so the largest crop is 1.25× the output: crops are then resampled at
    # roughly 1:1, which needs no anti-aliasing.
    largest = min(photo.shape[1], photo.shape[0] * aspect)
    factor = 1.25 * width / largest
    photo = cv2.resize(
        photo,
        (round(photo.shape[1] * factor), round(photo.shape[0] * factor)),
        interpolation=cv2.INTER_AREA,
    )
    photo_h, photo_w = photo.shape[:2]
    largest = min(photo_w, photo_h * aspect)
    start_w = largest * rng.uniform(0.7, 0.95)
    end_w = start_w * rng.uniform(0.92, 1.08)
    end_w = min(end_w, largest)
    drift = rng.uniform(-0.04, 0.04, size=2) * (photo_w, photo_h)

    def centre_range(crop_w: float) -> tuple[np.ndarray, np.ndarray]:
        half = np.array([crop_w / 2, crop_w / aspect / 2])
        return half, np.array([photo_w, photo_h]) - half

    low, high = centre_range(max(start_w, end_w))
    start_c = rng.uniform(low, high)
    end_c = np.clip(start_c + drift, low, high)

    frames = []
    for index in range(num_frames):
        t = index / max(num_frames - 1, 1)
        crop_w = start_w + (end_w - start_w) * t
        centre = start_c + (end_c - start_c) * t
        step = crop_w / width  # photo pixels per output pixel
        # Output pixel centre (u + 0.5) maps to photo pixel centre (x + 0.5).
        origin = centre - step * np.array([width, height]) / 2
        matrix = np.array(
            [[step, 0.0, origin[0] + step / 2 - 0.5], [0.0, step, origin[1] + step / 2 - 0.5]]
        )
        frame = cv2.warpAffine(
            photo,
            matrix,
            (width, height),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        frames.append(np.clip(frame, 0.0, 1.0).astype(np.float32))
    return frames


def auto_adjust(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One global colour/tone correction for a whole clip (a stand-in for production AutoAdjust).

    Grey-world white balance (channel gains limited to 0.8–1.25), a levels stretch from the 1st to
    the 99th percentile of the clip's intensities, and a gamma that brings the mean to 0.45.
    """
    stack = np.stack(frames)
    channel_means = stack.reshape(-1, 3).mean(axis=0)
    gains = np.clip(channel_means.mean() / np.maximum(channel_means, 1e-6), 0.8, 1.25)
    balanced = np.clip(stack * gains.astype(np.float32), 0.0, 1.0)
    low, high = np.percentile(balanced, [1.0, 99.0])
    stretched = np.clip((balanced - low) / max(high - low, 1e-3), 0.0, 1.0)
    mean = float(np.clip(stretched.mean(), 0.05, 0.95))
    gamma = float(np.clip(math.log(AUTO_ADJUST_MEAN) / math.log(mean), 0.5, 2.0))
    adjusted = np.power(stretched, gamma).astype(np.float32)
    return list(adjusted)


# --------------------------------------------------------------------------- writing


def _write_jpgs(folder: Path, frames: Sequence[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(frames, start=1):
        path = folder / f"frame_{number:04d}.jpg"
        bgr = tensor_to_bgr_uint8(image_to_tensor(image))
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"{path}: OpenCV could not write the frame")


def _write_mp4(path: Path, frames: Sequence[np.ndarray], fps: int, crf: int) -> None:
    encoded = [tensor_to_rgb_uint8(image_to_tensor(image)) for image in frames]
    write_reproducible_video(path, encoded, fps=fps, crf=crf)


def _video_rng(seed: int, plan_index: int, video_index: int) -> np.random.Generator:
    # One independent stream per video, so subsets and videos do not shift each other's draws.
    return np.random.default_rng([seed, plan_index, video_index])


def _build_video(
    root: Path, plan: SubsetPlan, plan_index: int, video_index: int, number: int, seed: int
) -> dict:
    rng = _video_rng(seed, plan_index, video_index)
    photo_name = plan.photos[(video_index + plan_index) % len(plan.photos)]
    clean = pan_zoom_clip(load_photo(photo_name), plan.frames, FRAME_WIDTH, FRAME_HEIGHT, rng)
    name = f"video_{number:04d}"
    folder = root / plan.folder
    if plan.subset == SUBSET_SYNTHETIC:
        params = sample_params(SYNTHETIC_RANGES, rng)
        _write_jpgs(
            folder / name / SOURCE_FRAMES_DIR, apply_params(clean, params, rng, fps=plan.fps)
        )
        _write_jpgs(folder / name / TARGET_FRAMES_DIR, clean)
        path = f"{plan.folder}/{name}"
    else:
        params = sample_params(WEBCAM_RANGES, rng)
        assert params.h264_crf is not None  # WEBCAM_RANGES.h264_prob is 1
        # The mp4 encode itself is the H.264 degradation, at the sampled CRF.
        degraded = apply_params(
            clean, dataclasses.replace(params, h264_crf=None), rng, fps=plan.fps
        )
        source = f"{name}{SOURCE_TAG}{VIDEO_SUFFIX}"
        _write_mp4(folder / source, degraded, plan.fps, crf=params.h264_crf)
        if plan.subset == SUBSET_REAL:
            target = f"{name}{TARGET_TAG}{VIDEO_SUFFIX}"
            _write_mp4(folder / target, auto_adjust(clean), plan.fps, crf=OFFICIAL_CRF)
        path = f"{plan.folder}/{source}"
    return {
        "path": path,
        "split": plan.split,
        "subset": plan.subset,
        "photo": photo_name,
        "frames": plan.frames,
        "fps": plan.fps,
        "degradations": describe_params(params),
    }


def _manifest(seed: int, videos: list[dict]) -> dict:
    return {
        "name": DEMO_NAME,
        "version": DEMO_VERSION,
        "seed": seed,
        "frame_size": {"width": FRAME_WIDTH, "height": FRAME_HEIGHT},
        "photos": {
            "source": f"scikit-image {skimage.__version__} bundled photographs",
            "train": list(TRAIN_PHOTOS),
            "test (validation and test clips)": list(TEST_PHOTOS),
        },
        "description": (__doc__ or "").strip(),
        "ranges": {
            "synthetic": dataclasses.asdict(SYNTHETIC_RANGES),
            "webcam (real, unsupervised)": dataclasses.asdict(WEBCAM_RANGES),
        },
        "videos": videos,
    }


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    # The uint8 conversions run on 320×180 frames: torch's thread pool only adds overhead there,
    # and on a busy machine it made the build several times slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _write_demo(root: Path, seed: int) -> None:
    videos = []
    for plan_index, plan in enumerate(PLAN):
        for video_index in range(plan.videos):
            # Video numbers run on across subsets, so every video_id in the index is unique.
            videos.append(_build_video(root, plan, plan_index, video_index, len(videos) + 1, seed))
    # Written last: its presence marks a complete demo set.
    atomic_write_text(root / DEMO_MANIFEST, json.dumps(_manifest(seed, videos), indent=2) + "\n")


# --------------------------------------------------------------------------- API


def default_demo_dir() -> Path:
    """``$VQE_DEMO_DIR`` if set, else ``~/.cache/vqe/demo``."""
    configured = os.environ.get(DEMO_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "vqe" / "demo"


def demo_version(folder: Path) -> int | None:
    """The version of the complete demo set in ``folder`` (its manifest is written last), or
    None when there is none."""
    try:
        manifest = json.loads((Path(folder) / DEMO_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("name") != DEMO_NAME:
        return None
    version = manifest.get("version")
    return version if isinstance(version, int) else 0


def is_demo(folder: Path) -> bool:
    """Whether ``folder`` holds a complete demo set, of any version."""
    return demo_version(folder) is not None


def build_demo(out_dir: Path, seed: int = 0, force: bool = False) -> Path:
    """Build the demo set in ``out_dir`` and return it.

    An earlier demo set there is replaced whole (with its index, which would be stale). A
    non-empty folder that is not a demo set is refused unless ``force``; with ``force`` the demo
    files are added to it, overwriting files of the same names and deleting nothing.
    The set is built in a sibling staging folder first, so an interrupted build leaves nothing.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder; choose another OUT_DIR")
    occupied = out_dir.is_dir() and any(out_dir.iterdir())
    replacing = occupied and is_demo(out_dir)
    if occupied and not replacing and not force:
        raise FileExistsError(
            f"{out_dir}: not empty and not a demo set (no {DEMO_MANIFEST}); choose an empty "
            "folder, or pass force=True (--force) to add the demo files to it"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        with _one_torch_thread():
            _write_demo(staging, seed)
        if replacing:
            logger.info("replacing the demo set in %s", out_dir)
            shutil.rmtree(out_dir)
        elif out_dir.is_dir() and not occupied:
            out_dir.rmdir()
        if out_dir.exists():
            shutil.copytree(staging, out_dir, dirs_exist_ok=True)
        else:
            staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def index_demo(root: Path, progress: bool = False) -> None:
    """Extract the mp4 frames and write ``train.csv``/``test.csv`` with the dataset builder."""
    from vqe.dataprep.build import (
        build_dataset,  # imported late: building the demo does not need it
    )

    report = build_dataset(Path(root), progress=progress)
    if report.failed:
        listed = "\n  ".join(str(item) for item in report.failed)
        raise RuntimeError(f"{root}: indexing the demo set failed for:\n  {listed}")


def ensure_demo(root: Path | None = None) -> Path:
    """The demo set at ``root`` (default :func:`default_demo_dir`), built and indexed if missing."""
    root = default_demo_dir() if root is None else Path(root).expanduser()
    found = demo_version(root)
    if found != DEMO_VERSION:
        if found is not None:
            logger.info(
                "%s holds demo set version %s; rebuilding it as version %s",
                root,
                found,
                DEMO_VERSION,
            )
        build_demo(root)  # replaces an older demo set whole, with its stale index
    if not all((root / csv_name).is_file() for csv_name in (TRAIN_CSV, TEST_CSV)):
        index_demo(root)
    return root
