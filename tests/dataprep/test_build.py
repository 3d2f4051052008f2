"""Dataset builder: tiny videos in the official layout → PNG frames + train.csv / test.csv."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vqe.conventions import bgr_uint8_to_tensor
from vqe.dataprep.build import build_dataset, merge_shards
from vqe.dataprep.extract import MARKER_FILE
from vqe.schema import (
    FPS,
    FRAME_INDEX,
    HEIGHT,
    IMG_SOURCE,
    IMG_TARGET,
    INDEX_COLUMNS,
    SUBSET,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
    TEST_CSV,
    TRAIN_CSV,
    VIDEO_ID,
    WIDTH,
)
from vqe.video import write_video

HEIGHT_PX, WIDTH_PX = 48, 64
CLIP_FPS = 20  # like the ~19 fps webcam clips; frame counts are even so 30 fps gives whole counts
#: (split, subset, video_id) → frames in the source video (or jpg pairs for synthetic).
LAYOUT = {
    ("train", SUBSET_SYNTHETIC, "video_0001"): 3,
    ("train", SUBSET_SYNTHETIC, "video_0002"): 2,
    ("train", SUBSET_REAL, "video_0001"): 4,
    ("train", SUBSET_REAL, "video_0002"): 2,
    ("train", SUBSET_UNSUPERVISED, "video_0001"): 4,
    ("train", SUBSET_UNSUPERVISED, "video_0002"): 2,  # solid colour, for the channel order check
    ("test", SUBSET_SYNTHETIC, "video_0001"): 2,
    ("test", SUBSET_UNSUPERVISED, "video_0001"): 6,
}
SOLID_RGB = (210, 40, 60)
SUBSET_DIRS = {
    SUBSET_SYNTHETIC: "supervised/synthetic",
    SUBSET_REAL: "supervised/real",
    SUBSET_UNSUPERVISED: "unsupervised",
}


def noise_frames(count: int, seed: int, height: int = HEIGHT_PX, width: int = WIDTH_PX) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def write_jpg_pair(video_dir: Path, names: list[str], target_size=(HEIGHT_PX, WIDTH_PX)) -> None:
    for folder, size in (("x", (HEIGHT_PX, WIDTH_PX)), ("y", target_size)):
        (video_dir / folder).mkdir(parents=True)
        for seed, name in enumerate(names):
            assert cv2.imwrite(str(video_dir / folder / name), noise_frames(1, seed, *size)[0])


def make_layout(root: Path) -> Path:
    for seed, ((split, subset, video_id), count) in enumerate(LAYOUT.items()):
        folder = root / split / SUBSET_DIRS[subset]
        if subset == SUBSET_SYNTHETIC:
            write_jpg_pair(folder / video_id, [f"{n}.jpg" for n in range(1, count + 1)])
            continue
        if video_id == "video_0002" and subset == SUBSET_UNSUPERVISED:
            frames = [np.full((HEIGHT_PX, WIDTH_PX, 3), SOLID_RGB, np.uint8)] * count
        else:
            frames = noise_frames(count, seed)
        write_video(folder / f"{video_id}_x.mp4", frames, fps=CLIP_FPS)
        if subset == SUBSET_REAL:
            write_video(folder / f"{video_id}_y.mp4", noise_frames(count, seed + 100), fps=CLIP_FPS)
    return root


def expected_frames(subset: str, count: int, fps: float | None) -> int:
    if subset == SUBSET_SYNTHETIC or fps is None:
        return count
    return count * fps // CLIP_FPS  # duration × fps


def read_index(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames) == INDEX_COLUMNS
        return list(reader)


def rows_per_video(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    grouped: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault((row[SUBSET], row[VIDEO_ID]), []).append(row)
    return grouped


def png_mtimes(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in root.rglob("*.png")}


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    return make_layout(tmp_path / "data")


def test_build_writes_frames_and_both_indexes(source: Path) -> None:
    report = build_dataset(source, progress=False)
    assert report.ok, report.failure_list()
    for split, index_name in (("train", TRAIN_CSV), ("test", TEST_CSV)):
        grouped = rows_per_video(read_index(source / index_name))
        expected = {(s, v): n for (sp, s, v), n in LAYOUT.items() if sp == split}
        assert set(grouped) == set(expected)
        for (subset, video_id), rows in grouped.items():
            assert len(rows) == expected_frames(subset, expected[subset, video_id], 30)
            assert [int(row[FRAME_INDEX]) for row in rows] == list(range(len(rows)))
            assert {row[FPS] for row in rows} == ({""} if subset == SUBSET_SYNTHETIC else {"30"})
            for row in rows:
                paths = [row[IMG_SOURCE]] + (
                    [row[IMG_TARGET]] if subset != SUBSET_UNSUPERVISED else []
                )
                assert (row[IMG_TARGET] == "") == (subset == SUBSET_UNSUPERVISED)
                for relative in paths:
                    assert not Path(relative).is_absolute() and "\\" not in relative
                    image = cv2.imread(str(source / relative))
                    assert image is not None, relative
                    assert image.shape[:2] == (int(row[HEIGHT]), int(row[WIDTH]))
            if subset != SUBSET_SYNTHETIC:  # frames land in <name>/x/frame_%04d.png beside the mp4
                first = f"{split}/{SUBSET_DIRS[subset]}/{video_id}/x/frame_0001.png"
                assert rows[0][IMG_SOURCE] == first
        for (count_split, subset), counts in report.counts.items():
            if count_split == split:
                videos = {k: r for k, r in grouped.items() if k[0] == subset}
                assert counts.videos == len(videos)
                assert counts.frames == sum(len(r) for r in videos.values())


def test_frames_keep_colour_order(source: Path, tmp_path: Path) -> None:
    build_dataset(source, out_dir=tmp_path / "frames", progress=False)
    png = tmp_path / "frames/train/unsupervised/video_0002/x/frame_0001.png"
    mean_rgb = bgr_uint8_to_tensor(cv2.imread(str(png))).mean(dim=(1, 2)) * 255
    assert np.allclose(mean_rgb.numpy(), SOLID_RGB, atol=6)  # H.264 shifts colours a little


def test_fps_null_keeps_every_frame(source: Path, tmp_path: Path) -> None:
    report = build_dataset(source, out_dir=tmp_path / "native", fps=None, progress=False)
    assert report.ok, report.failure_list()
    grouped = rows_per_video(read_index(tmp_path / "native" / TRAIN_CSV))
    for (split, subset, video_id), count in LAYOUT.items():
        if split == "train":
            rows = grouped[subset, video_id]
            assert len(rows) == count
            # Synthetic frames stay in the source folder: ../ paths from the out_dir.
            assert all((tmp_path / "native" / row[IMG_SOURCE]).is_file() for row in rows)
            assert {row[FPS] for row in rows} == ({""} if subset == SUBSET_SYNTHETIC else {"20"})


def test_second_run_reuses_complete_videos_and_redoes_interrupted_ones(source: Path) -> None:
    build_dataset(source, progress=False)
    indexes = {name: (source / name).read_bytes() for name in (TRAIN_CSV, TEST_CSV)}
    mtimes = png_mtimes(source)

    again = build_dataset(source, progress=False)
    videos = sum(1 for (_, subset, _) in LAYOUT if subset != SUBSET_SYNTHETIC)
    assert again.frames_written == 0
    assert sum(counts.reused for counts in again.counts.values()) == videos
    assert png_mtimes(source) == mtimes
    assert {name: (source / name).read_bytes() for name in indexes} == indexes

    # An interrupted extraction: no marker, last frame missing.
    video_dir = source / "train/unsupervised/video_0001"
    (video_dir / MARKER_FILE).unlink()
    last = max((video_dir / "x").glob("*.png"))
    last.unlink()
    redone = build_dataset(source, progress=False)
    assert redone.frames_written == expected_frames(SUBSET_UNSUPERVISED, 4, 30)
    assert last.exists() and (video_dir / MARKER_FILE).exists()
    assert {name: (source / name).read_bytes() for name in indexes} == indexes


def test_other_settings_need_overwrite(source: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "frames"
    build_dataset(source, out_dir=out_dir, fps=30, progress=False)
    refused = build_dataset(source, out_dir=out_dir, fps=None, progress=False)
    videos = {(s, sub, v) for (s, sub, v) in LAYOUT if sub != SUBSET_SYNTHETIC}
    assert len(refused.failed) == len(videos)
    assert all("overwrite=true" in failure.reason for failure in refused.failed)
    assert (out_dir / "test/unsupervised/video_0001/x/frame_0009.png").exists()  # untouched

    redone = build_dataset(source, out_dir=out_dir, fps=None, overwrite=True, progress=False)
    assert redone.ok, redone.failure_list()
    assert len(read_index(out_dir / TEST_CSV)) == 2 + 6  # every native frame, no more
    assert not (out_dir / "test/unsupervised/video_0001/x/frame_0007.png").exists()


def test_shards_cover_every_video_once_and_merge_to_the_unsharded_index(
    source: Path, tmp_path: Path
) -> None:
    full_dir, sharded_dir = tmp_path / "full", tmp_path / "sharded"
    build_dataset(source, out_dir=full_dir, progress=False)
    first = build_dataset(source, out_dir=sharded_dir, shard="1/2", workers=2, progress=False)
    assert not (sharded_dir / TRAIN_CSV).exists()  # waits for the other shard
    second = build_dataset(source, out_dir=sharded_dir, shard="2/2", progress=False)
    assert first.ok and second.ok

    for split, index_name in (("train", TRAIN_CSV), ("test", TEST_CSV)):
        shard_videos = [
            set(rows_per_video(read_index(sharded_dir / f"{split}.shard-{k}-of-2.csv")))
            for k in (1, 2)
        ]
        assert not shard_videos[0] & shard_videos[1]
        assert shard_videos[0] | shard_videos[1] == {(s, v) for (sp, s, v) in LAYOUT if sp == split}
        assert (sharded_dir / index_name).read_bytes() == (full_dir / index_name).read_bytes()

    (sharded_dir / TRAIN_CSV).unlink()
    assert {path.name for path in merge_shards(sharded_dir)} == {TRAIN_CSV, TEST_CSV}
    assert (sharded_dir / TRAIN_CSV).read_bytes() == (full_dir / TRAIN_CSV).read_bytes()


def test_bad_items_are_reported_and_the_good_ones_indexed(source: Path) -> None:
    real = source / "train/supervised/real"
    (source / "train/unsupervised/video_0009_x.mp4").write_bytes(os.urandom(2048))
    write_video(real / "video_0003_x.mp4", noise_frames(2, 1), fps=CLIP_FPS)  # no _y
    write_video(real / "video_0004_x.mp4", noise_frames(2, 2), fps=CLIP_FPS)
    write_video(real / "video_0004_y.mp4", noise_frames(2, 3, 24, 32), fps=CLIP_FPS)
    write_video(real / "video_0005_x.mp4", noise_frames(2, 4), fps=CLIP_FPS)
    write_video(real / "video_0005_y.mp4", noise_frames(4, 5), fps=CLIP_FPS)
    synthetic = source / "train/supervised/synthetic"
    write_jpg_pair(synthetic / "video_0003", ["1.jpg", "2.jpg"])
    (synthetic / "video_0003/y/2.jpg").rename(synthetic / "video_0003/y/3.jpg")
    write_jpg_pair(synthetic / "video_0004", ["1.jpg"], target_size=(24, 32))
    (source / "test/supervised/real").mkdir(parents=True)

    report = build_dataset(source, progress=False)
    reasons = dict(report.failed)
    assert set(reasons) == {
        "train/unsupervised/video_0009_x.mp4",
        "train/supervised/real/video_0003_x.mp4",
        "train/supervised/real/video_0004_x.mp4",
        "train/supervised/real/video_0005_x.mp4",
        "train/supervised/synthetic/video_0003/x",
        "train/supervised/synthetic/video_0004/x",
        "test/supervised/real",
    }
    assert "cannot" in reasons["train/unsupervised/video_0009_x.mp4"]
    assert "video_0003_y.mp4" in reasons["train/supervised/real/video_0003_x.mp4"]
    assert "32×24" in reasons["train/supervised/real/video_0004_x.mp4"]
    assert (
        "3 frames but video_0005_y.mp4 gives 6" in reasons["train/supervised/real/video_0005_x.mp4"]
    )
    assert "2.jpg" in reasons["train/supervised/synthetic/video_0003/x"]
    assert "3.jpg" in reasons["train/supervised/synthetic/video_0003/x"]
    assert "32×24" in reasons["train/supervised/synthetic/video_0004/x"]
    assert "empty" in reasons["test/supervised/real"]
    assert not (real / "video_0005").exists()  # a failed pair leaves no frames or folders

    grouped = rows_per_video(read_index(source / TRAIN_CSV))
    assert set(grouped) == {(s, v) for (sp, s, v) in LAYOUT if sp == "train"}
    assert report.counts["test", SUBSET_REAL].failed == 1


def test_cli_exits_non_zero_and_keeps_the_working_directory_clean(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_video(root / "train/unsupervised/video_0001_x.mp4", noise_frames(2, 0), fps=CLIP_FPS)
    (root / "train/unsupervised/video_0002_x.mp4").write_bytes(os.urandom(1024))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    completed = subprocess.run(
        [sys.executable, "-m", "vqe.cli.build", f"source_dir={root}", "progress=false"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "train/unsupervised/video_0002_x.mp4" in completed.stdout
    assert "unsupervised" in completed.stdout.splitlines()[-2]  # the summary table ends the output
    assert list(workdir.iterdir()) == []
    assert len(read_index(root / TRAIN_CSV)) == expected_frames(SUBSET_UNSUPERVISED, 2, 30)


@pytest.mark.parametrize(
    "arguments",
    [{"shard": "3/2"}, {"shard": "1-2"}, {"fps": 0}, {"fps": "thirty"}, {"workers": 0}],
)
def test_bad_arguments_are_refused(source: Path, arguments: dict) -> None:
    name = next(iter(arguments))
    with pytest.raises(ValueError, match=name):
        build_dataset(source, progress=False, **arguments)


def test_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="source_dir"):
        build_dataset(tmp_path / "nowhere", progress=False)
    with pytest.raises(FileNotFoundError, match="train/"):
        build_dataset(tmp_path, progress=False)


def test_help_lists_the_builder_keys_only() -> None:
    """``--help`` shows the builder's keys, not the training config groups (issue 16)."""
    result = subprocess.run(
        [sys.executable, "-m", "vqe.cli.build", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "source_dir: ???" in result.stdout and "shard: null" in result.stdout
    assert "model_vqe" not in result.stdout and "Configuration groups" not in result.stdout
