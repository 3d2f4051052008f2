"""Clips for :mod:`vqe.cli.bench.quality`: clean camera moves over the VALIDATION and TEST
photographs and a window of the TEST video, degraded like the challenge's synthetic sources,
and the labelled comparison strip with face crops.

A photo clip is a slow pan and zoom (:func:`vqe.dataprep.demo.pan_zoom_clip`: the crop drifts by up
to 4 % of the photo and zooms by up to 8 % over the clip — a little camera motion, so flicker
and warping error see moving content) across the window of the clip's aspect centred on the
photo's largest face (:func:`framed_on_face`; a wide crop of a portrait would otherwise show the
chest, not the face) of one photograph of :data:`vqe.data.photos`'
validation or test split, which the training pool never contains. A video clip
(:func:`make_video_clip`) is a window of a real video (OpenCV's ``vtest.avi``: people walking),
centre-cropped to the clip's aspect and resized: its own motion replaces the pan. The clean clip
is the target. The input is that clip with one sampled set of :mod:`vqe.data.degradations`
applied to every frame (:data:`TEST_RANGES`): a colour cast, an uneven light field, a dim
exposure (mean 0.16–0.24, near the challenge's 50/255) with a slow light flicker over time
(3–8 % at 0.5–1.5 Hz), then blur, noise and JPEG, and last the H.264 encode of the stored mp4
itself (CRF 28–34, webcam-like) — so what the enhancers decode is exactly the degraded video,
as in a submission.

Everything a clip draws comes from :func:`clip_rng` — the seed, the source's name and the
clip's number among that source's clips — so the same seed gives the same clips on every run,
adding a photograph to a split changes no other photograph's clips, and a backlit clip shares
every draw with the uniform clip of the same number but the person's light.

:func:`comparison_strip` lays out labelled frames; :func:`face_box` finds the largest frontal
face (OpenCV's bundled Haar cascade) so the strip can show it enlarged, and :func:`face_crop`
cuts that box (or the centre, without a face) from every method's frame.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8
from vqe.data.degradations import (
    SYNTHETIC_RANGES,
    DegradationRanges,
    SubjectLightParams,
    apply_params,
    describe_params,
    image_to_tensor,
    sample_params,
    tensor_to_image,
    write_reproducible_video,
)
from vqe.data.person_region import Box, Ellipse, face_box, find_person
from vqe.data.photos import (
    PEOPLE,
    SPLIT_PHOTOS,
    TEST_PHOTOS,
    TEST_VIDEOS,
    load_photo,
    load_video_window,
    split_of,
)
from vqe.dataprep.demo import pan_zoom_clip
from vqe.video import OFFICIAL_FPS

log = logging.getLogger(__name__)

#: The test degradations: the demo's synthetic (HDRI-only look, Real-ESRGAN ranges scaled to
#: small frames) with every lighting step on, a *slow* flicker (a 30-frame clip holds ½–1½
#: cycles) and H.264 on (applied as the mp4's own encode, see :func:`make_clip`).
TEST_RANGES = dataclasses.replace(
    SYNTHETIC_RANGES,
    color_cast_prob=1.0,
    uneven_light_prob=1.0,
    underexpose_prob=1.0,
    blur_prob=1.0,
    noise_prob=1.0,
    jpeg_prob=1.0,
    flicker_prob=1.0,
    flicker_amplitude=(0.03, 0.08),
    flicker_frequency=(0.5, 1.5),
    h264_prob=1.0,
    h264_crf=(28, 34),
)


#: Lighting of a clip: the test ranges' light over the whole frame, or besides that the person
#: lit darker than the background (:class:`vqe.data.degradations.SubjectLightParams` on the
#: person region) — the challenge's first criterion is the person's light (issue 28).
UNIFORM = "uniform"
FOREGROUND = "foreground"


class NoPersonError(ValueError):
    """A FOREGROUND clip was asked of frames in which no face is found."""


#: Light kept on the person of a FOREGROUND clip, and the soft edge of their region.
FOREGROUND_GAIN = (0.3, 0.6)
FOREGROUND_SOFTNESS = 0.5


@dataclass(frozen=True)
class TestClip:
    """One degraded test clip on disk and its clean target frames in memory."""

    name: str  # file stem, e.g. clip_01_astronaut
    photo: str  # the pool name of its photograph or video
    input_path: Path  # the degraded H.264 mp4 the enhancers read
    target: list[np.ndarray]  # clean H×W×3 RGB uint8 frames
    degradations: dict[str, object]  # describe_params of what was applied
    split: str = "test"  # the photo split of its source
    person: bool = False  # does the source show people?
    kind: str = "photo"  # "photo" (a pan over it) or "video" (a window of it)
    lighting: str = UNIFORM  # UNIFORM, or FOREGROUND: the person darker than the room
    # Head and shoulders below the largest face of the middle clean frame (None without one):
    # where the person-region PSNR is measured, and what a FOREGROUND clip darkens.
    person_region: Ellipse | None = None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """H×W×3 float32 [0, 1] → H×W×3 RGB uint8 (the conventions' rounding)."""
    return tensor_to_rgb_uint8(image_to_tensor(image))


def photo_float(name: str) -> np.ndarray:
    """A pool photograph as H×W×3 float32 RGB in [0, 1]."""
    return tensor_to_image(rgb_uint8_to_tensor(load_photo(name)))


def _check_clip(num_frames: int, width: int, height: int) -> None:
    if width % 2 or height % 2:
        raise ValueError(f"clip size {width}×{height}: yuv420p needs even sides")
    if num_frames < 2:
        raise ValueError(
            f"a test clip needs at least 2 frames (temporal metrics), got {num_frames}"
        )


def _safe_name(source: str) -> str:
    return source.replace(":", "_").replace("/", "_")


def clip_rng(seed: int, source: str, copy: int) -> np.random.Generator:
    """The draws of clip ``copy`` of ``source``: keyed by the source's name (CRC-32, the same
    in every process), not by the clip's position in a list that grows with the splits."""
    return np.random.default_rng([seed, zlib.crc32(source.encode()), copy])


def clip_person(frames: Sequence[np.ndarray]) -> Ellipse | None:
    """The person of a clip: the largest of the regions found on its first, middle and last
    frames (the camera moves little; one frame alone may miss the face or take a small false
    detection for it). Used for every frame: the person ellipse is generous enough."""
    picks = {0, len(frames) // 2, len(frames) - 1}
    found = [region for index in sorted(picks) if (region := find_person(frames[index]))]
    return max(found, key=lambda r: r.radii[0] * r.radii[1]) if found else None


def _degraded_clip(
    folder: Path,
    index: int,
    source: str,
    clean: list[np.ndarray],
    rng: np.random.Generator,
    ranges: DegradationRanges,
    kind: str,
    lighting: str = UNIFORM,
) -> TestClip:
    """Degrade ``clean`` (float frames) with one parameter set, write the mp4, return the clip."""
    targets = [to_uint8(image) for image in clean]
    # Only sources that show people have a person (the cascade also "finds" faces in façades).
    region = clip_person(targets) if source in PEOPLE else None
    params = sample_params(ranges, rng)
    if lighting == FOREGROUND:
        if region is None:
            raise NoPersonError(
                f"{source}: no face found at {clean[0].shape[1]}×{clean[0].shape[0]}, so no "
                "person to light differently"
            )
        gain = float(rng.uniform(*FOREGROUND_GAIN))  # drawn after the rest: seeds stay stable
        params = dataclasses.replace(
            params, subject=SubjectLightParams(region, gain, FOREGROUND_SOFTNESS)
        )
    elif lighting != UNIFORM:
        raise ValueError(f"lighting must be {UNIFORM!r} or {FOREGROUND!r}, got {lighting!r}")
    crf = params.h264_crf
    # The mp4's own encode is the H.264 step (as for the demo's webcam clips): encoding a
    # re-encoded clip again would compress twice.
    degraded = apply_params(
        clean, dataclasses.replace(params, h264_crf=None), rng, fps=OFFICIAL_FPS
    )
    suffix = "_backlit" if lighting == FOREGROUND else ""
    name = f"clip_{index + 1:02d}_{_safe_name(source)}{suffix}"
    path = folder / f"{name}.mp4"
    frames = [to_uint8(image) for image in degraded]
    write_reproducible_video(path, frames, fps=OFFICIAL_FPS, crf=crf if crf is not None else 18)
    try:
        split = split_of(source)
    except KeyError:  # a photograph outside the splits, asked for by name
        split = "other"
    return TestClip(
        name,
        source,
        path,
        targets,
        describe_params(params),
        split=split,
        person=source in PEOPLE,
        kind=kind,
        lighting=lighting,
        person_region=region,
    )


def make_clip(
    folder: Path,
    index: int,
    photo: str,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    ranges: DegradationRanges = TEST_RANGES,
    lighting: str = UNIFORM,
    copy: int = 0,
) -> TestClip:
    """Write clip ``index`` (a pan over ``photo``, its ``copy``-th draw: :func:`clip_rng`) as
    ``folder/<name>.mp4``; return it. ``lighting`` FOREGROUND also darkens the person (the
    photo needs a face)."""
    _check_clip(num_frames, width, height)
    rng = clip_rng(seed, photo, copy)
    framed = framed_on_face(load_photo(photo), width / height)
    clean = pan_zoom_clip(
        tensor_to_image(rgb_uint8_to_tensor(framed)), num_frames, width, height, rng
    )
    return _degraded_clip(folder, index, photo, clean, rng, ranges, "photo", lighting)


def framed_on_face(photo: np.ndarray, aspect: float) -> np.ndarray:
    """The largest window of ``photo`` of ``aspect`` (width / height) centred on its largest
    face, so that a wide clip of a portrait shows the face rather than the chest; the photo as
    it is without a face."""
    face = face_box(photo)
    if face is None:
        return photo
    rows, cols = photo.shape[:2]
    width = min(cols, round(rows * aspect))
    height = min(rows, round(width / aspect))
    centre_x, centre_y = face[0] + face[2] / 2, face[1] + face[3] / 2
    left = int(min(max(0, round(centre_x - width / 2)), cols - width))
    top = int(min(max(0, round(centre_y - height / 2)), rows - height))
    return photo[top : top + height, left : left + width]


#: The first frame of a video's first window (vtest.avi: people are in view from here on);
#: later windows of one video follow on.
VIDEO_FIRST_FRAME = 100


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB uint8 frame centre-cropped to width:height and area-resized → float32 [0, 1]."""
    rows, cols = frame.shape[:2]
    crop_w = min(cols, round(rows * width / height))
    crop_h = min(rows, round(crop_w * height / width))
    top, left = (rows - crop_h) // 2, (cols - crop_w) // 2
    window = frame[top : top + crop_h, left : left + crop_w]
    resized = cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA)
    return tensor_to_image(rgb_uint8_to_tensor(resized))


def make_video_clip(
    folder: Path,
    index: int,
    video: str,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    window: int = 0,
    ranges: DegradationRanges = TEST_RANGES,
) -> TestClip:
    """Write clip ``index``: window ``window`` (``num_frames`` frames from
    :data:`VIDEO_FIRST_FRAME` on) of ``video``, fitted to width×height and degraded with the
    draws of :func:`clip_rng` for that window."""
    _check_clip(num_frames, width, height)
    rng = clip_rng(seed, video, window)
    start = VIDEO_FIRST_FRAME + window * num_frames
    frames = load_video_window(video, start, num_frames)
    clean = [fit_frame(frame, width, height) for frame in frames]
    return _degraded_clip(folder, index, video, clean, rng, ranges, "video")


def make_clips(
    folder: Path,
    count: int,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    photos: Sequence[str] = TEST_PHOTOS,
) -> list[TestClip]:
    """``count`` clips cycling over ``photos`` (default: the TEST photographs)."""
    if count < 1:
        raise ValueError(f"need at least one test clip, got {count}")
    if not photos:
        raise ValueError("no test photographs to make clips from")
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_clip(
            folder, index, photos[index % len(photos)], num_frames, width, height, seed,
            copy=index // len(photos),
        )
        for index in range(count)
    ]  # fmt: skip


def split_sources(splits: Sequence[str], max_photos: int | None = None) -> list[tuple[str, str]]:
    """(source, kind) of the benchmark's clips: each split's photographs (the first
    ``max_photos`` of each, when given), then, for the test split, its videos."""
    sources: list[tuple[str, str]] = []
    for split in splits:
        if split not in ("validation", "test"):
            raise ValueError(f"benchmark clips come from 'validation' or 'test', not {split!r}")
        photos = SPLIT_PHOTOS[split][:max_photos]
        sources += [(photo, "photo") for photo in photos]
        if split == "test":
            sources += [(video, "video") for video in TEST_VIDEOS]
    if not sources:
        raise ValueError(f"no photographs or videos in the splits {list(splits)}")
    return sources


def make_split_clips(
    folder: Path,
    per_source: int,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    splits: Sequence[str] = ("validation", "test"),
    max_photos: int | None = None,
    foreground: bool = True,
) -> list[TestClip]:
    """``per_source`` clips of every source of :func:`split_sources`, numbered in order; then,
    with ``foreground``, ``per_source`` FOREGROUND clips of each of those photographs that shows
    people (numbered after all the others, so the uniform clips of a seed never change)."""
    if per_source < 1:
        raise ValueError(f"need at least one clip per source, got {per_source}")
    folder.mkdir(parents=True, exist_ok=True)
    clips: list[TestClip] = []
    for source, kind in split_sources(splits, max_photos):
        for copy in range(per_source):
            index = len(clips)
            if kind == "video":
                clip = make_video_clip(
                    folder, index, source, num_frames, width, height, seed, window=copy
                )
            else:
                clip = make_clip(folder, index, source, num_frames, width, height, seed, copy=copy)
            clips.append(clip)
    if foreground:
        people = [
            s for s, kind in split_sources(splits, max_photos) if kind == "photo" and s in PEOPLE
        ]
        for source in people:
            for copy in range(per_source):
                try:
                    clips.append(
                        make_clip(folder, len(clips), source, num_frames, width, height, seed,
                                  lighting=FOREGROUND, copy=copy)
                    )  # fmt: skip
                except NoPersonError as error:  # tiny frames, or a close-up that cuts the face
                    log.warning("no foreground clip: %s", error)
    return clips


# --------------------------------------------------------------------------- face crops

#: A face box is enlarged by this factor around its centre (hair, chin and a little context).
FACE_MARGIN = 1.6


def crop_box(frame: np.ndarray, face: Box | None, margin: float = FACE_MARGIN) -> Box:
    """A square box in the frame: the face enlarged by ``margin``, or the centre square of
    half the frame's shorter side without a face."""
    rows, cols = frame.shape[:2]
    if face is None:
        side = max(2, min(rows, cols) // 2)
        centre_x, centre_y = cols / 2, rows / 2
    else:
        left, top, width, height = face
        side = max(2, min(rows, cols, round(max(width, height) * margin)))
        centre_x, centre_y = left + width / 2, top + height / 2
    # Shifted, not shrunk, to stay inside the frame.
    left = int(min(max(0, round(centre_x - side / 2)), cols - side))
    top = int(min(max(0, round(centre_y - side / 2)), rows - side))
    return left, top, side, side


def face_crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """``box`` of ``frame`` enlarged to size×size (cubic, for viewing)."""
    left, top, width, height = box
    window = frame[top : top + height, left : left + width]
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------- the strip

_LABEL_HEIGHT = 22


def _labelled(image: np.ndarray, label: str) -> np.ndarray:
    """``image`` under a white band holding ``label`` in black."""
    band = np.full((_LABEL_HEIGHT, image.shape[1], 3), 255, dtype=np.uint8)
    scale = 0.45 if image.shape[1] >= 200 else 0.35
    cv2.putText(band, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def comparison_strip(
    rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], gap: int = 4
) -> np.ndarray:
    """One row per clip: its (label, frame) pairs left to right, each under its label, the clip
    name in the first label. Frames of a row share one height; rows share one width."""
    if not rows:
        raise ValueError("comparison_strip: no rows")
    lines = []
    for clip_name, panels in rows:
        parts = []
        for number, (label, image) in enumerate(panels):
            text = f"{clip_name}: {label}" if number == 0 else label
            parts.append(_labelled(image, text))
            parts.append(np.full((parts[-1].shape[0], gap, 3), 255, dtype=np.uint8))
        lines.append(np.concatenate(parts[:-1], axis=1))
        lines.append(np.full((gap, lines[-1].shape[1], 3), 255, dtype=np.uint8))
    return np.concatenate(lines[:-1], axis=0)


__all__ = [
    "FOREGROUND",
    "UNIFORM",
    "TEST_RANGES",
    "VIDEO_FIRST_FRAME",
    "TestClip",
    "comparison_strip",
    "crop_box",
    "face_box",
    "face_crop",
    "fit_frame",
    "framed_on_face",
    "clip_rng",
    "make_clip",
    "make_clips",
    "make_split_clips",
    "make_video_clip",
    "split_sources",
    "photo_float",
    "to_uint8",
]
