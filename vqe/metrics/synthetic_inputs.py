"""Turn the synthetic test inputs (jpg sequences) into mp4s that enhancers take.

    vqe synthetic-inputs --data-root ROOT [--split test] --out DIR [--crf 0] [--overwrite]

Enhancers (``baseline/baseline.py``, ``python -m vqe.inference``) work on folders of mp4s, but the
synthetic test pairs are jpg sequences. Every ``ROOT/<split>/supervised/synthetic/video_XXXX/x/``
sequence becomes ``DIR/video_XXXX.mp4`` (named after the video id), 30 fps, its frames in the
order the dataset index uses (natural sort of the names that ``x/`` and ``y/`` share).

**Lossless by default** (``--crf 0``: libx264rgb, RGB, CRF 0): decoding the mp4 gives back
exactly the frames the training test loop reads from the jpgs, so an enhancer's scored output
differs from what the test loop would see only by what the enhancer itself does (including its
own, official encoding). Lossless files are large — roughly the size of the raw frames divided by
two to four; for the 500 official clips (5 s of 1280×720 each) plan on tens of GB. ``--crf N``
(N > 0) writes the official, lossy encoding instead (H.264, yuv420p, CRF N): small files, but
then the inputs carry a compression loss that the test loop does not see.

Then enhance this folder and the unsupervised inputs into one folder, and score it::

    python baseline/baseline.py --dir_in DIR --dir_out ENHANCED
    python baseline/baseline.py --dir_in ROOT/test/unsupervised --dir_out ENHANCED
    vqe score-outputs --enhanced ENHANCED --data-root ROOT --out RESULTS …

Like the other batch jobs, a video that fails is listed and the others still finish (exit
status 1); an existing mp4 is left alone unless ``--overwrite``; each file is written under a
temporary name and renamed when complete. The command is :mod:`vqe.cli.synthetic_inputs`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vqe.batch_jobs import FolderReport
from vqe.conventions import swap_rgb_bgr_uint8
from vqe.dataprep.extract import ItemError, Settings, index_frame_pairs
from vqe.dataprep.layout import Item, list_items
from vqe.schema import SPLITS, SUBSET_SYNTHETIC
from vqe.video import OFFICIAL_FPS, VideoError, write_video

#: ``--crf 0``: lossless RGB H.264 (decodes to the exact input pixels).
LOSSLESS_CRF = 0
LOSSLESS_CODEC = "libx264rgb"
LOSSLESS_PIX_FMT = "rgb24"
VIDEO_SUFFIX = ".mp4"


def synthetic_video_name(video_id: str) -> str:
    """File name of a synthetic test video's mp4 (input here, enhanced output likewise)."""
    return f"{video_id}{VIDEO_SUFFIX}"


@dataclass(frozen=True)
class SyntheticVideo:
    """One synthetic pair of the split, with its frame names in index order."""

    video_id: str
    source_dir: Path  # the x/ folder
    target_dir: Path  # the y/ folder
    frame_names: tuple[str, ...]  # shared by x/ and y/


def synthetic_items(data_root: Path, split: str) -> list[Item]:
    """The synthetic items of ``split`` as the dataset builder lists them (problems included)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return [
        item
        for item in list_items(Path(data_root))
        if item.split == split and item.subset == SUBSET_SYNTHETIC
    ]


def synthetic_video(item: Item, data_root: Path) -> SyntheticVideo:
    """Validate one synthetic pair exactly as the index builder does (x/ and y/ frames of the
    same names and sizes); raises :class:`~vqe.dataprep.extract.ItemError` naming the folder."""
    if item.problem is not None:
        raise ItemError(f"{item.source}: {item.problem}")
    assert item.target is not None
    indexed = index_frame_pairs(item, Settings(index_root=data_root, fps=None, overwrite=False))
    assert indexed.frame_names is not None  # jpg sequences keep their own names
    return SyntheticVideo(item.video_id, item.source, item.target, indexed.frame_names)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H×W×3 RGB uint8, decoded by OpenCV like the dataset reads it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ItemError(f"{path}: cannot read this frame (missing or not an image)")
    return swap_rgb_bgr_uint8(image)


def encode_lossless(destination: Path, frames: Iterable[np.ndarray]) -> int:
    """Encode RGB uint8 frames losslessly (libx264rgb, CRF 0) at 30 fps; returns frames written.
    Decoding the file gives back exactly these frames."""
    return write_video(
        destination,
        frames,
        fps=OFFICIAL_FPS,
        crf=LOSSLESS_CRF,
        codec=LOSSLESS_CODEC,
        pix_fmt=LOSSLESS_PIX_FMT,
    )


def encode_inputs(video: SyntheticVideo, destination: Path, crf: int = LOSSLESS_CRF) -> int:
    """Encode the x/ frames of ``video`` to ``destination``; returns frames written."""
    if crf < 0:
        raise ValueError(f"crf must be ≥ 0 (0 = lossless), got {crf}")
    frames = (read_rgb(video.source_dir / name) for name in video.frame_names)
    if crf == LOSSLESS_CRF:
        return encode_lossless(destination, frames)
    return write_video(destination, frames, fps=OFFICIAL_FPS, crf=crf)


def _partial_path(destination: Path) -> Path:
    return destination.with_name(f".{destination.stem}.partial{destination.suffix}")


def write_synthetic_inputs(
    data_root: str | Path,
    out_dir: str | Path,
    split: str = "test",
    crf: int = LOSSLESS_CRF,
    overwrite: bool = False,
    progress: bool = True,
) -> FolderReport:
    """Write ``out_dir/video_XXXX.mp4`` for every synthetic pair of ``split``; see the module doc.

    Raises ValueError when the split holds no synthetic videos; per-video failures go to the
    report.
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    items = synthetic_items(data_root, split)
    if not items:
        raise ValueError(
            f"{data_root / split / 'supervised' / 'synthetic'}: no synthetic videos found; "
            "point --data-root at the root of the official layout"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    report = FolderReport()
    for item in tqdm(items, desc="synthetic inputs", unit="video", disable=not progress):
        destination = out_dir / synthetic_video_name(item.video_id)
        if destination.exists() and not overwrite:
            report.skipped.append(destination)
            continue
        partial = _partial_path(destination)
        try:
            report.frames += encode_inputs(synthetic_video(item, data_root), partial, crf)
            os.replace(partial, destination)
            report.written.append(destination)
        except (ItemError, VideoError, OSError, ValueError) as error:
            partial.unlink(missing_ok=True)
            report.failed.append((item.source, str(error)))
    return report


if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.synthetic_inputs", "synthetic-inputs")
