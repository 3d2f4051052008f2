"""Embedded demo set: official layout, matching pairs, determinism, size, folder safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vqe.cli.demo import main as demo_main
from vqe.data.degradations import SYNTHETIC_RANGES, training_degradation
from vqe.dataprep import demo
from vqe.schema import (
    DEMO_MANIFEST,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
    VIDEO_ID,
)
from vqe.video import probe, read_frames


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.build_demo(tmp_path_factory.mktemp("demo") / "set", seed=0)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second build with the same seed, through the command line."""
    root = tmp_path_factory.mktemp("demo_again") / "set"
    assert demo_main([str(root), "--seed", "0", "--no-index"]) == 0
    return root


def demo_files(root: Path) -> list[Path]:
    return sorted(
        path.relative_to(root) for path in root.rglob("*") if path.suffix in {".jpg", ".mp4"}
    )


def synthetic_videos(root: Path) -> list[Path]:
    return sorted(
        path
        for split in ("train", "test")
        for path in (root / split / "supervised" / "synthetic").iterdir()
    )


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return image


def test_layout_is_the_official_one(built: Path) -> None:
    expected_videos = sum(plan.videos for plan in demo.PLAN)
    manifest = json.loads((built / DEMO_MANIFEST).read_text())
    assert manifest["seed"] == 0 and len(manifest["videos"]) == expected_videos
    for entry in manifest["videos"]:
        assert (built / entry["path"]).exists(), entry["path"]

    for plan in demo.PLAN:
        folder = built / plan.folder
        if plan.subset == SUBSET_SYNTHETIC:
            videos = sorted(folder.glob("video_[0-9][0-9][0-9][0-9]"))
            # train/supervised/synthetic holds the training and the validation clips.
            assert len(videos) == sum(p.videos for p in demo.PLAN if p.folder == plan.folder)
            for video in videos:
                names = [f"frame_{n:04d}.jpg" for n in range(1, plan.frames + 1)]
                assert sorted(p.name for p in (video / "x").iterdir()) == names
                assert sorted(p.name for p in (video / "y").iterdir()) == names
        else:
            inputs = sorted(folder.glob("video_[0-9][0-9][0-9][0-9]_x.mp4"))
            targets = sorted(folder.glob("video_*_y.mp4"))
            assert len(inputs) == plan.videos
            paired = plan.subset == SUBSET_REAL
            assert [p.name.replace("_y", "_x") for p in targets] == (
                [p.name for p in inputs] if paired else []
            )
    assert sorted(p.name for p in built.iterdir()) == [DEMO_MANIFEST, "test", "train"]
    assert {p.name for p in (built / "train").iterdir()} == {"supervised", SUBSET_UNSUPERVISED}
    # Video numbers are unique across the whole set.
    ids = [Path(entry["path"]).name.removesuffix("_x.mp4") for entry in manifest["videos"]]
    assert len(set(ids)) == len(ids)


def test_pairs_match_in_count_and_size_and_frames_are_16_by_9(built: Path) -> None:
    for video in synthetic_videos(built):
        xs = sorted((video / "x").iterdir())
        ys = sorted((video / "y").iterdir())
        assert len(xs) == len(ys)
        for x_path, y_path in zip(xs, ys, strict=True):
            assert (
                read_rgb(x_path).shape
                == read_rgb(y_path).shape
                == (demo.FRAME_HEIGHT, demo.FRAME_WIDTH, 3)
            )
    for plan in demo.PLAN:
        if plan.subset == SUBSET_SYNTHETIC:
            continue
        for x_path in sorted((built / plan.folder).glob("*_x.mp4")):
            info = probe(x_path)
            assert (info.width, info.height) == (demo.FRAME_WIDTH, demo.FRAME_HEIGHT)
            assert info.fps == pytest.approx(plan.fps)
            x_frames = list(read_frames(x_path))
            assert len(x_frames) == plan.frames
            if plan.subset == SUBSET_REAL:
                y_frames = list(read_frames(x_path.with_name(x_path.name.replace("_x", "_y"))))
                assert len(y_frames) == len(x_frames) and y_frames[0].shape == x_frames[0].shape
    assert (
        demo.FRAME_WIDTH * 9 == demo.FRAME_HEIGHT * 16
        and demo.FRAME_WIDTH % 2 == demo.FRAME_HEIGHT % 2 == 0
    )


def test_unsupervised_clips_are_not_30_fps(built: Path) -> None:
    rates = {probe(path).fps for path in (built / "train" / "unsupervised").glob("*_x.mp4")}
    assert rates and 30 not in rates


def test_synthetic_inputs_are_dark_and_darker_than_targets(built: Path) -> None:
    for video in synthetic_videos(built):
        x_mean = np.mean([read_rgb(p).mean() for p in sorted((video / "x").iterdir())])
        y_mean = np.mean([read_rgb(p).mean() for p in sorted((video / "y").iterdir())])
        assert x_mean < 0.7 * y_mean, video
        assert 35 < x_mean < 70, video  # near the challenge's 50/255


def test_real_targets_are_brighter_than_inputs(built: Path) -> None:
    for x_path in sorted((built / "train" / "supervised" / "real").glob("*_x.mp4")):
        x_mean = np.mean([frame.mean() for frame in read_frames(x_path)])
        y_mean = np.mean(
            [
                frame.mean()
                for frame in read_frames(x_path.with_name(x_path.name.replace("_x", "_y")))
            ]
        )
        assert y_mean > x_mean + 20, x_path


def test_clips_move_and_inputs_flicker(built: Path) -> None:
    for video in synthetic_videos(built):
        xs = [read_rgb(p).astype(float) for p in sorted((video / "x").iterdir())]
        ys = [read_rgb(p).astype(float) for p in sorted((video / "y").iterdir())]
        assert np.abs(ys[0] - ys[-1]).mean() > 2, video  # the camera pans/zooms
        # The exposure of x wobbles against y's (one steady gain would keep the ratio ~constant).
        ratios = np.array([x.mean() / y.mean() for x, y in zip(xs, ys, strict=True)])
        assert ratios.max() / ratios.min() > 1.04, video


def test_same_seed_gives_identical_files(built: Path, rebuilt: Path) -> None:
    files = demo_files(built)
    assert files == demo_files(rebuilt) and files
    for relative in files:
        if relative.suffix == ".jpg":
            assert (built / relative).read_bytes() == (rebuilt / relative).read_bytes(), relative
        else:
            for a, b in zip(
                read_frames(built / relative), read_frames(rebuilt / relative), strict=True
            ):
                np.testing.assert_array_equal(a, b, err_msg=str(relative))
    assert (built / DEMO_MANIFEST).read_text() == (rebuilt / DEMO_MANIFEST).read_text()


def test_other_seeds_give_other_clips() -> None:
    photo = demo.load_photo("astronaut")
    first = demo.pan_zoom_clip(photo, 3, 64, 36, np.random.default_rng(0))
    again = demo.pan_zoom_clip(photo, 3, 64, 36, np.random.default_rng(0))
    other = demo.pan_zoom_clip(photo, 3, 64, 36, np.random.default_rng(1))
    np.testing.assert_array_equal(first[2], again[2])
    assert not np.array_equal(first[0], other[0])


def test_demo_is_small(built: Path) -> None:
    total = sum(path.stat().st_size for path in built.rglob("*") if path.is_file())
    assert total < 4_000_000


def test_refuses_a_foreign_folder_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write_stub(root: Path, seed: int) -> None:  # stands in for the real (slower) build
        (root / "train").mkdir()
        (root / "train" / "made.txt").write_text(str(seed))
        (root / DEMO_MANIFEST).write_text(json.dumps({"name": demo.DEMO_NAME, "seed": seed}))

    monkeypatch.setattr(demo, "_write_demo", write_stub)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a demo set"):
        demo.build_demo(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert demo_main([str(foreign), "--no-index"]) == 2

    demo.build_demo(foreign, seed=3, force=True)
    assert (foreign / "notes.txt").read_text() == "keep me"  # force adds, deletes nothing
    assert (foreign / "train" / "made.txt").read_text() == "3"

    # A demo set is ours: rebuilding replaces it whole, stale files included.
    (foreign / "train" / "stale.png").write_text("old frame")
    demo.build_demo(foreign, seed=4)
    assert sorted(p.name for p in foreign.iterdir()) == [DEMO_MANIFEST, "train"]
    assert (foreign / "train" / "made.txt").read_text() == "4"
    assert not list(tmp_path.glob(".mine.building-*"))  # no staging folder left behind


def test_default_demo_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(demo.DEMO_DIR_ENV, str(tmp_path / "here"))
    assert demo.default_demo_dir() == tmp_path / "here"
    monkeypatch.delenv(demo.DEMO_DIR_ENV)
    assert demo.default_demo_dir() == Path.home() / ".cache" / "vqe" / "demo"


def test_ensure_demo_indexes_the_set(built: Path, tmp_path: Path) -> None:
    pytest.importorskip("vqe.dataprep.build")
    import pandas as pd

    from vqe.schema import (
        FRAME_INDEX_COLUMNS,
        IMG_SOURCE,
        IMG_TARGET,
        SUBSET,
        TEST_CSV,
        TRAIN_CSV,
    )

    root = tmp_path / "demo"
    shutil.copytree(built, root)
    assert demo.ensure_demo(root) == root
    train = pd.read_csv(root / TRAIN_CSV, keep_default_na=False)
    test = pd.read_csv(root / TEST_CSV, keep_default_na=False)
    assert list(train.columns[: len(FRAME_INDEX_COLUMNS)]) == list(FRAME_INDEX_COLUMNS)
    expected: dict[tuple[str, str], int] = {}
    for plan in demo.PLAN:
        # 20 fps clips are resampled to 30 fps by the builder: 1.5× the frames.
        key = (plan.split, plan.subset)
        expected[key] = expected.get(key, 0) + plan.frames * plan.videos * 30 // plan.fps
    for (split, subset), count in expected.items():
        rows = (train if split == "train" else test).query(f"{SUBSET} == @subset")
        assert len(rows) == count, (split, subset)
        assert all((root / path).is_file() for path in rows[IMG_SOURCE])
        has_target = subset != SUBSET_UNSUPERVISED
        assert (rows[IMG_TARGET] != "").all() == has_target


def _photos_by_video(root: Path) -> dict[str, str]:
    manifest = json.loads((root / DEMO_MANIFEST).read_text())
    return {
        Path(entry["path"]).name.removesuffix("_x.mp4"): entry["photo"]
        for entry in manifest["videos"]
    }


def test_validation_and_test_clips_show_only_unseen_photographs_of_their_own_split(
    built: Path, tmp_path: Path
) -> None:
    from hydra import compose, initialize_config_dir

    import vqe.config_root  # noqa: F401  (registers ${vqe.mac_budget:})
    from vqe.data.datamodule import VQEDataModule
    from vqe.data.photos import TEST_PHOTOS, TRAIN_PHOTOS, VALIDATION_PHOTOS

    root = tmp_path / "demo"
    shutil.copytree(built, root)
    demo.ensure_demo(root)
    config_dir = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        dataset = compose(overrides=["+dataset=demo"]).dataset
    # The demo config's held-out videos, as the datamodule picks them from the built index.
    datamodule = VQEDataModule(
        path=root,
        train_query=dataset.train_query,
        val_query=dataset.val_query,
        val_videos=dataset.val_videos,
        crop_size=16,
    )
    datamodule.setup("fit")
    datamodule.setup("test")
    photo_of = _photos_by_video(root)

    def photos(dataset) -> set[str]:
        return {photo_of[video] for video in dataset.index[VIDEO_ID]}

    assert photos(datamodule.train_set) <= set(TRAIN_PHOTOS)
    assert photos(datamodule.val_set) and photos(datamodule.val_set) <= set(VALIDATION_PHOTOS)
    assert photos(datamodule.test_set) and photos(datamodule.test_set) <= set(TEST_PHOTOS)
    assert datamodule.val_set.index[VIDEO_ID].nunique() == demo.VAL_VIDEOS


def test_the_training_degradation_darkens_like_the_synthetic_clips() -> None:
    import torch

    pipeline = training_degradation()
    clean = torch.from_numpy(demo.load_photo("chelsea").copy()).permute(2, 0, 1)[:, :128, :128]
    means = [float(pipeline(clean, np.random.default_rng(seed)).mean()) for seed in range(6)]
    low, high = SYNTHETIC_RANGES.target_mean
    assert all(low - 0.05 < mean < high + 0.05 for mean in means), means
    assert float(clean.mean()) > high + 0.1


def test_the_training_degradation_casts_within_the_given_gain_range() -> None:
    import torch

    from vqe.data.degradations import sample_params

    gray = torch.full((3, 32, 32), 0.5)
    wide = training_degradation(cast_gain=[0.5, 2.0])
    gains = np.array(
        [sample_params(wide.ranges, np.random.default_rng(s)).color_gains for s in range(200)]
    )
    assert gains[:, [0, 2]].min() >= 0.5 and gains[:, [0, 2]].max() <= 2.0
    assert gains[:, [0, 2]].min() < 0.7 and gains[:, [0, 2]].max() > 1.5  # wider than the clips'
    # The drawn gains act: a red gain of about 2 leaves a grey frame redder than blue.
    red = next(s for s in range(200) if gains[s, 0] > 1.8 and gains[s, 2] < 1.0)
    tinted = wide(gray, np.random.default_rng(red))
    assert float(tinted[0].mean()) > float(tinted[2].mean())
    for bad in ([1.5, 0.5], [0.0, 1.0], "x"):
        with pytest.raises(ValueError, match="cast_gain"):
            training_degradation(cast_gain=bad)


def test_ensure_demo_rebuilds_an_older_demo_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_seeds: list[int] = []

    def write_stub(root: Path, seed: int) -> None:
        built_seeds.append(seed)
        manifest = {"name": demo.DEMO_NAME, "version": demo.DEMO_VERSION, "seed": seed}
        (root / DEMO_MANIFEST).write_text(json.dumps(manifest))

    monkeypatch.setattr(demo, "_write_demo", write_stub)
    monkeypatch.setattr(demo, "index_demo", lambda root, progress=False: None)
    root = tmp_path / "demo"
    root.mkdir()
    old = {"name": demo.DEMO_NAME, "version": demo.DEMO_VERSION - 1, "seed": 0}
    (root / DEMO_MANIFEST).write_text(json.dumps(old))
    (root / "train.csv").write_text("stale")
    (root / "test.csv").write_text("stale")
    demo.ensure_demo(root)
    assert built_seeds == [0] and demo.demo_version(root) == demo.DEMO_VERSION
    assert not (root / "train.csv").exists()  # the stale index went with the old set
    demo.ensure_demo(root)
    assert built_seeds == [0]  # the current version is reused
