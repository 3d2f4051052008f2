"""Test helpers: tiny frame sets with a frame-index CSV, written without the builder or the demo
set (:mod:`vqe.dataprep`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from vqe import schema


@dataclass(frozen=True)
class VideoSpec:
    subset: str
    video_id: str
    frames: int
    height: int
    width: int

    @property
    def has_target(self) -> bool:
        return self.subset in schema.SUPERVISED_SUBSETS


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write an H×W×3 RGB uint8 image losslessly (png) through OpenCV, i.e. as BGR."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"cannot write {path}")


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_frame_set(
    root: Path, csv_name: str, videos: list[VideoSpec], seed: int = 0
) -> pd.DataFrame:
    """Write random png frames (targets too for supervised videos) and their index CSV."""
    rng = np.random.default_rng(seed)
    split = Path(csv_name).stem
    rows = []
    for video in videos:
        for frame in range(video.frames):
            source = f"{split}/{video.subset}/{video.video_id}/x/frame_{frame + 1:04d}.png"
            target = source.replace("/x/", "/y/") if video.has_target else ""
            write_rgb(root / source, random_rgb(rng, video.height, video.width))
            if target:
                write_rgb(root / target, random_rgb(rng, video.height, video.width))
            rows.append(
                {
                    schema.IMG_SOURCE: source,
                    schema.IMG_TARGET: target,
                    schema.HEIGHT: video.height,
                    schema.WIDTH: video.width,
                    schema.SUBSET: video.subset,
                    schema.VIDEO_ID: video.video_id,
                    schema.FRAME_INDEX: frame,
                    schema.FPS: 30,
                }
            )
    table = pd.DataFrame(rows, columns=list(schema.INDEX_COLUMNS))
    table.to_csv(root / csv_name, index=False)
    return table


#: A small training split: pairs and unsupervised inputs at two frame sizes.
TRAIN_VIDEOS = [
    VideoSpec(schema.SUBSET_SYNTHETIC, "video_0001", 4, 32, 48),
    VideoSpec(schema.SUBSET_SYNTHETIC, "video_0002", 4, 32, 48),
    VideoSpec(schema.SUBSET_SYNTHETIC, "video_0003", 4, 32, 48),
    VideoSpec(schema.SUBSET_REAL, "video_0004", 3, 36, 40),
    VideoSpec(schema.SUBSET_UNSUPERVISED, "video_0005", 5, 36, 40),
    VideoSpec(schema.SUBSET_UNSUPERVISED, "video_0006", 3, 32, 48),
]
TEST_VIDEOS = [
    VideoSpec(schema.SUBSET_SYNTHETIC, "video_0007", 3, 32, 48),
    VideoSpec(schema.SUBSET_UNSUPERVISED, "video_0008", 3, 36, 40),
]


def write_train_and_test(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        write_frame_set(root, schema.TRAIN_CSV, TRAIN_VIDEOS, seed=1),
        write_frame_set(root, schema.TEST_CSV, TEST_VIDEOS, seed=2),
    )
