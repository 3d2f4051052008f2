"""Where the person is in a frame: the largest frontal face (OpenCV's bundled cascade) and the
soft ellipse over head and shoulders that stands for the person below it.

The challenge judges the *person's* light first ("the person … should be optimally lit"), so
degradations that light the subject differently from the room (:mod:`vqe.data.degradations`'
subject light) and metrics inside the person (the quality benchmark's person-region PSNR) both
need the region. A face detector gives the head; the body is taken as the region below it, the
plainest choice that needs no segmentation network (none ships offline):

* the ellipse is centred :data:`BODY_DROP` face heights below the face's centre, so it covers
  the head and the upper body a webcam frames;
* its half-width is :data:`HALF_WIDTH` face widths (shoulders are about 2.5 faces wide), its
  half-height :data:`HALF_HEIGHT` face heights (from above the hair down past the chest).

Regions are given as fractions of the frame (:class:`Ellipse`), so one region serves every size
of the same view; :func:`ellipse_membership` turns one into a soft H×W mask.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: The frontal-face Haar cascade that ships with opencv-python 4 (``cv2.data``).
FACE_CASCADE = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / (
    "haarcascade_frontalface_default.xml"
)
Box = tuple[int, int, int, int]  # left, top, width, height


@functools.lru_cache(maxsize=1)
def _face_detector() -> Callable[[np.ndarray], list[Box]]:
    """Boxes of frontal faces in a grey uint8 frame: OpenCV's Haar cascade where this OpenCV
    has one (4.x), else OpenCV's LBP frontal-face cascade as scikit-image bundles it (OpenCV 5
    dropped ``CascadeClassifier`` and its cascade files)."""
    if hasattr(cv2, "CascadeClassifier") and FACE_CASCADE.is_file():
        cascade = cv2.CascadeClassifier(str(FACE_CASCADE))
        if cascade.empty():
            raise ValueError(f"face cascade {FACE_CASCADE} cannot be read; reinstall opencv")

        def haar(grey: np.ndarray) -> list[Box]:
            found = cascade.detectMultiScale(
                grey, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20)
            )
            return [tuple(int(v) for v in box) for box in found]  # type: ignore[misc]

        return haar
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    lbp = Cascade(lbp_frontal_face_cascade_filename())

    def lbp_faces(grey: np.ndarray) -> list[Box]:
        found = lbp.detect_multi_scale(
            grey, scale_factor=1.2, step_ratio=1, min_size=(20, 20), max_size=grey.shape
        )
        return [(int(f["c"]), int(f["r"]), int(f["width"]), int(f["height"])) for f in found]

    return lbp_faces


def face_box(frame: np.ndarray) -> Box | None:
    """The largest frontal face in an RGB uint8 frame, or None."""
    grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    faces = _face_detector()(grey)
    if not faces:
        return None
    return max(faces, key=lambda box: box[2] * box[3])


#: The person ellipse from a face box, in face heights / widths (see the module docstring).
BODY_DROP = 1.1
HALF_WIDTH = 1.5
HALF_HEIGHT = 2.1


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned ellipse as fractions of the frame: centre (x, y) of width and height,
    half-axes (rx, ry) of width and height."""

    center: tuple[float, float]
    radii: tuple[float, float]

    def __post_init__(self) -> None:
        if min(self.radii) <= 0:
            raise ValueError(f"Ellipse: radii must be positive, got {self.radii}")


def person_ellipse(face: Box, height: int, width: int) -> Ellipse:
    """The head-and-shoulders ellipse below ``face`` in a ``height``×``width`` frame."""
    left, top, face_w, face_h = face
    centre_x = (left + face_w / 2) / width
    centre_y = (top + face_h / 2 + BODY_DROP * face_h) / height
    return Ellipse(
        (centre_x, centre_y), (HALF_WIDTH * face_w / width, HALF_HEIGHT * face_h / height)
    )


#: Small frames are searched at twice their size too: the cascade misses faces of ~60 pixels.
SMALL_FRAME_HEIGHT = 360


def find_person(frame: np.ndarray) -> Ellipse | None:
    """The person ellipse of the largest face in an RGB uint8 frame, or None without a face.
    A frame under :data:`SMALL_FRAME_HEIGHT` is searched at twice its size as well and the
    largest face of both searches wins: false detections are small, real faces may be missed."""
    height, width = frame.shape[:2]
    faces = [face for face in [face_box(frame)] if face is not None]
    if height < SMALL_FRAME_HEIGHT:
        larger = cv2.resize(frame, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
        found = face_box(larger)
        if found is not None:
            faces.append((found[0] // 2, found[1] // 2, found[2] // 2, found[3] // 2))
    if not faces:
        return None
    face = max(faces, key=lambda box: box[2] * box[3])
    return person_ellipse(face, height, width)


def ellipse_membership(height: int, width: int, region: Ellipse, softness: float) -> np.ndarray:
    """H×W float32 in [0, 1]: 1 inside ``region``, 0 outside, with a smooth edge ``softness``
    (a fraction of the radii) wide across the boundary. ``softness`` 0 gives a hard mask."""
    if softness < 0:
        raise ValueError(f"ellipse_membership: softness must be ≥ 0, got {softness}")
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx = ((xs + 0.5) / width - region.center[0]) / region.radii[0]
    dy = ((ys + 0.5) / height - region.center[1]) / region.radii[1]
    distance = np.sqrt(dx * dx + dy * dy)  # 1 on the boundary
    if softness == 0:
        return (distance <= 1.0).astype(np.float32)
    # Smoothstep from 1 + softness/2 (outside) to 1 − softness/2 (inside).
    t = np.clip((1.0 + softness / 2 - distance) / softness, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


__all__ = [
    "Box",
    "Ellipse",
    "ellipse_membership",
    "face_box",
    "find_person",
    "person_ellipse",
]
