"""FrameDataset over a tiny index, and the pair transforms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from index_helpers import TRAIN_VIDEOS, VideoSpec, write_frame_set, write_rgb

from vqe import schema
from vqe.data.datasets import FrameDataset, read_index
from vqe.data.sampler import FrameKey
from vqe.data.transforms import (
    Augmentation,
    EvalTransform,
    TrainTransform,
    affine_theta,
    as_size,
    warp,
)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture()
def train_root(tmp_path: Path) -> Path:
    write_frame_set(tmp_path, schema.TRAIN_CSV, TRAIN_VIDEOS)
    return tmp_path


# --------------------------------------------------------------------------- dataset items


def test_items_have_keys_shapes_and_range(train_root: Path) -> None:
    dataset = FrameDataset.from_csv(train_root, schema.TRAIN_CSV)
    assert len(dataset) == sum(video.frames for video in TRAIN_VIDEOS)
    table = dataset.index
    for row in range(len(dataset)):
        item = dataset[row]
        supervised = table.at[row, schema.SUBSET] != schema.SUBSET_UNSUPERVISED
        expected_keys = {
            "x",
            "subset",
            "video_id",
            "frame_index",
            "has_target",
            "source",
            "stored_input",
            "dover_input",
        }
        assert set(item) == expected_keys | ({"y"} if supervised else set())
        assert item["has_target"] is supervised
        shape = (3, int(table.at[row, schema.HEIGHT]), int(table.at[row, schema.WIDTH]))
        for key in ("x", "y") if supervised else ("x",):
            assert item[key].dtype == torch.float32 and tuple(item[key].shape) == shape
            assert 0.0 <= item[key].min() and item[key].max() <= 1.0
        assert item["source"] == table.at[row, schema.IMG_SOURCE]
        assert item["video_id"] == table.at[row, schema.VIDEO_ID]
        assert item["frame_index"] == table.at[row, schema.FRAME_INDEX]


def test_frames_come_out_rgb(tmp_path: Path) -> None:
    write_frame_set(tmp_path, schema.TRAIN_CSV, [VideoSpec(schema.SUBSET_SYNTHETIC, "v", 1, 8, 8)])
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255  # RGB red; write_rgb stores it as OpenCV BGR (0, 0, 255)
    write_rgb(tmp_path / "train/synthetic/v/x/frame_0001.png", red)
    x = FrameDataset.from_csv(tmp_path, schema.TRAIN_CSV)[0]["x"]
    assert torch.all(x[0] == 1.0) and torch.all(x[1:] == 0.0)


def test_query_selects_rows_and_frame_index_is_derived_when_missing(train_root: Path) -> None:
    table = read_index(
        train_root / schema.TRAIN_CSV, "subset == 'synthetic' and video_id == 'video_0002'"
    )
    assert len(table) == 4 and set(table[schema.VIDEO_ID]) == {"video_0002"}
    pd.read_csv(train_root / schema.TRAIN_CSV).drop(columns=[schema.FRAME_INDEX]).to_csv(
        train_root / "official.csv", index=False
    )
    official = read_index(train_root / "official.csv")
    assert (
        official[schema.FRAME_INDEX].tolist()
        == read_index(train_root / schema.TRAIN_CSV)[schema.FRAME_INDEX].tolist()
    )


def test_frame_index_is_derived_from_frame_names_not_row_order(train_root: Path) -> None:
    # The official builder lists frames in glob order: shuffle the rows, drop frame_index.
    ours = read_index(train_root / schema.TRAIN_CSV)
    shuffled = pd.read_csv(train_root / schema.TRAIN_CSV).sample(frac=1.0, random_state=0)
    shuffled[list(schema.FRAME_INDEX_COLUMNS)].to_csv(train_root / "glob.csv", index=False)
    derived = read_index(train_root / "glob.csv")
    assert dict(zip(derived[schema.IMG_SOURCE], derived[schema.FRAME_INDEX])) == dict(
        zip(ours[schema.IMG_SOURCE], ours[schema.FRAME_INDEX])
    )
    assert schema.FPS not in derived.columns  # absent, and nothing needs it


def test_unpadded_frame_numbers_are_ordered_numerically(tmp_path: Path) -> None:
    names = ["frame_10.jpg", "frame_9.jpg", "frame_1.jpg"]
    pd.DataFrame(
        {
            schema.IMG_SOURCE: [f"v/x/{name}" for name in names],
            schema.IMG_TARGET: [f"v/y/{name}" for name in names],
            schema.HEIGHT: 8,
            schema.WIDTH: 8,
            schema.SUBSET: "train_supervised_synthetic",
            schema.VIDEO_ID: "v",
        }
    ).to_csv(tmp_path / "index.csv", index=False)
    table = read_index(tmp_path / "index.csv")
    assert table[schema.FRAME_INDEX].tolist() == [2, 1, 0]


def test_official_subset_names_are_read_as_ours_in_rows_and_queries(
    train_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    official_names = {
        "synthetic": "train_supervised_synthetic",
        "real": "train_supervised_real",
        "unsupervised": "train_unsupervised",
    }
    table = pd.read_csv(train_root / schema.TRAIN_CSV)
    table[schema.SUBSET] = table[schema.SUBSET].map(official_names)
    table.to_csv(train_root / "official_names.csv", index=False)
    for query in (
        None,
        "subset == 'synthetic' and video_id != 'video_0001'",
        "subset in ['real', 'unsupervised']",
    ):
        ours = read_index(train_root / schema.TRAIN_CSV, query)
        with caplog.at_level("INFO", logger="vqe.data.datasets"):
            theirs = read_index(train_root / "official_names.csv", query)
        pd.testing.assert_frame_equal(theirs, ours)
    # A query may also be written in the official vocabulary.
    official_query = read_index(
        train_root / "official_names.csv", "subset == 'train_supervised_real'"
    )
    assert len(official_query) > 0 and set(official_query[schema.SUBSET]) == {"real"}
    notes = [r.getMessage() for r in caplog.records if "official subset names" in r.getMessage()]
    assert len(notes) == 1 and "official_names.csv" in notes[0]
    assert "train_unsupervised -> unsupervised" in notes[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=[schema.SUBSET]), "missing columns"),
        (lambda t: t.assign(subset="studio"), "studio"),
        (lambda t: t.assign(frame_index=""), "frame_index"),
        (lambda t: t.assign(h=0), "integers >= 1"),
    ],
)
def test_bad_index_names_the_csv(train_root: Path, change, message: str) -> None:
    bad = train_root / "bad.csv"
    change(pd.read_csv(train_root / schema.TRAIN_CSV)).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=message) as error:
        read_index(bad)
    assert str(bad) in str(error.value)


def test_bad_query_and_missing_csv_are_explained(train_root: Path) -> None:
    with pytest.raises(ValueError, match="cannot apply query 'colour =='"):
        read_index(train_root / schema.TRAIN_CSV, "colour ==")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_index(train_root / "nope.csv")


def _first_row(dataset: FrameDataset, subset: str) -> int:
    return int(np.flatnonzero(dataset.index[schema.SUBSET] == subset)[0])


def test_missing_unreadable_and_mis_sized_frames_name_file_and_csv(train_root: Path) -> None:
    dataset = FrameDataset.from_csv(train_root, schema.TRAIN_CSV)
    csv_path = str(train_root / schema.TRAIN_CSV)
    row = _first_row(dataset, schema.SUBSET_SYNTHETIC)
    source = train_root / dataset.index.at[row, schema.IMG_SOURCE]
    target = train_root / dataset.index.at[row, schema.IMG_TARGET]

    source.unlink()
    with pytest.raises(FileNotFoundError) as missing:
        dataset[row]
    assert str(source) in str(missing.value) and csv_path in str(missing.value)

    source.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot be decoded") as unreadable:
        dataset[row]
    assert str(source) in str(unreadable.value) and csv_path in str(unreadable.value)

    write_rgb(source, np.zeros((32, 48, 3), dtype=np.uint8))
    write_rgb(target, np.zeros((30, 48, 3), dtype=np.uint8))  # the target no longer matches x or h
    with pytest.raises(ValueError, match="30×48") as mismatch:
        dataset[row]
    assert str(target) in str(mismatch.value) and csv_path in str(mismatch.value)


def _halve_plus_noise(y: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    noise = torch.from_numpy(rng.uniform(0.0, 0.1, size=tuple(y.shape)).astype(np.float32))
    return (0.5 * y + noise).clamp(0.0, 1.0)


def test_pair_synthesis_is_seeded_per_seed_epoch_and_index(train_root: Path) -> None:
    dataset = FrameDataset.from_csv(
        train_root, schema.TRAIN_CSV, pair_synthesis=_halve_plus_noise, seed=3
    )
    row = _first_row(dataset, schema.SUBSET_SYNTHETIC)
    (train_root / dataset.index.at[row, schema.IMG_SOURCE]).unlink()  # synthesised, so never read
    first = dataset[FrameKey(row, 2)]
    noise = first["x"] - 0.5 * first["y"]
    assert noise.min() >= -1e-6 and noise.max() <= 0.1 + 1e-6 and noise.std() > 0.01
    assert torch.equal(dataset[FrameKey(row, 2)]["x"], first["x"])
    assert not torch.equal(dataset[FrameKey(row, 3)]["x"], first["x"])
    assert not torch.equal(
        dataset[FrameKey(row + 1, 2)]["x"] - 0.5 * dataset[FrameKey(row + 1, 2)]["y"], noise
    )
    reseeded = FrameDataset.from_csv(
        train_root, schema.TRAIN_CSV, pair_synthesis=_halve_plus_noise, seed=4
    )
    assert not torch.equal(reseeded[FrameKey(row, 2)]["x"], first["x"])
    # Unsupervised rows have no target to synthesise from: their stored input is used.
    unsupervised = _first_row(dataset, schema.SUBSET_UNSUPERVISED)
    plain = FrameDataset.from_csv(train_root, schema.TRAIN_CSV)
    assert torch.equal(dataset[unsupervised]["x"], plain[unsupervised]["x"])


def test_pair_synthesis_runs_after_the_crop(train_root: Path) -> None:
    shapes: list[tuple[int, ...]] = []

    def record(y: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        shapes.append(tuple(y.shape))
        return y * 0.5

    dataset = FrameDataset.from_csv(
        train_root, schema.TRAIN_CSV, transform=TrainTransform((16, 16)), pair_synthesis=record
    )
    item = dataset[_first_row(dataset, schema.SUBSET_SYNTHETIC)]
    assert shapes == [(3, 16, 16)]
    assert torch.allclose(item["x"], item["y"] * 0.5)


def test_synthesis_subsets_are_checked(train_root: Path) -> None:
    with pytest.raises(ValueError, match="unsupervised"):
        FrameDataset.from_csv(
            train_root,
            schema.TRAIN_CSV,
            pair_synthesis=_halve_plus_noise,
            synthesis_subsets=[schema.SUBSET_UNSUPERVISED],
        )


# --------------------------------------------------------------------------- transforms

_GEOMETRY = {
    "crop_scale": (0.3, 1.0),
    "crop_ratio": (0.8, 1.25),
    "hflip_p": 1.0,
    "affine_p": 1.0,
    "max_rotate_deg": 10.0,
    "max_shift": 0.1,
    "scale_range": (0.9, 1.1),
}
_COLOUR = {"jitter_p": 1.0, "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}


def test_geometry_is_identical_on_x_and_y() -> None:
    frame = torch.rand(3, 32, 48, generator=_generator(0))
    for seed in range(5):
        x, y = TrainTransform((16, 24), Augmentation(**_GEOMETRY))(
            frame.clone(), frame.clone(), _generator(seed)
        )
        assert x.shape == (3, 16, 24) and torch.equal(x, y)


def test_colour_jitter_changes_x_only() -> None:
    frame = torch.rand(3, 32, 48, generator=_generator(0))
    geometry_only = TrainTransform((16, 16), Augmentation(hflip_p=0.5))
    with_jitter = TrainTransform((16, 16), Augmentation(hflip_p=0.5, **_COLOUR))
    x_plain, y_plain = geometry_only(frame, frame, _generator(7))
    x, y = with_jitter(frame, frame, _generator(7))
    assert torch.equal(y, y_plain) and torch.equal(x_plain, y_plain)
    assert (x - y).abs().mean() > 1e-3
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_train_transform_is_reproducible_per_seed() -> None:
    frame = torch.rand(3, 32, 48, generator=_generator(0))
    transform = TrainTransform((16, 16), Augmentation(**_GEOMETRY, **_COLOUR))
    first = transform(frame, frame, _generator(11))
    again = transform(frame, frame, _generator(11))
    other = transform(frame, frame, _generator(12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_plain_random_crop_cuts_the_frame_without_resampling() -> None:
    frame = torch.rand(3, 32, 48, generator=_generator(0))
    (patch,) = TrainTransform((8, 8)).geometric([frame], _generator(5))
    windows = frame.unfold(1, 8, 1).unfold(2, 8, 1)  # 3 × 25 × 41 × 8 × 8: every 8×8 window
    matches = (windows == patch[:, None, None]).flatten(3).all(-1).all(0)
    assert int(matches.sum()) == 1


def test_affine_theta_rotates_in_pixel_units_on_non_square_frames() -> None:
    frame = torch.rand(1, 3, 16, 32, generator=_generator(0))
    assert torch.allclose(
        warp(frame, affine_theta(0.0, 1.0, (0.0, 0.0), (16, 32))), frame, atol=1e-5
    )
    turned = warp(frame, affine_theta(90.0, 1.0, (0.0, 0.0), (16, 32)))
    # The centre 16×16 square of the output is the centre square of the input turned by 90°.
    centre = frame[..., :, 8:24]
    candidates = [torch.rot90(centre, k=k, dims=(-2, -1)) for k in (1, -1)]
    assert any(torch.allclose(turned[..., :, 8:24], c, atol=1e-4) for c in candidates)
    shifted = warp(frame, affine_theta(0.0, 1.0, (0.25, 0.0), (16, 32)))  # 8 pixels to the right
    assert torch.allclose(shifted[..., 8:], frame[..., :-8], atol=1e-5)


def test_random_resized_crop_outputs_the_crop_size() -> None:
    frame = torch.rand(3, 20, 60, generator=_generator(0))
    transform = TrainTransform((16, 16), Augmentation(crop_scale=(0.1, 1.0), crop_ratio=(0.5, 2.0)))
    for seed in range(10):
        (patch,) = transform.geometric([frame], _generator(seed))
        assert patch.shape == (3, 16, 16)


def test_eval_transform_is_deterministic_and_centred() -> None:
    frame = torch.rand(3, 32, 48, generator=_generator(0))
    x, y = EvalTransform()(frame, frame, _generator(0))
    assert torch.equal(x, frame) and torch.equal(y, frame)
    (cropped,) = EvalTransform((16, 16)).geometric([frame], _generator(1))
    assert torch.equal(cropped, frame[:, 8:24, 16:32])
    (resized,) = EvalTransform((16, 24), fit="resize").geometric([frame], _generator(2))
    assert resized.shape == (3, 16, 24)
    assert math.isclose(float(resized.mean()), float(frame.mean()), abs_tol=1e-3)


def test_bad_sizes_and_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="larger than the frame"):
        TrainTransform((64, 64)).geometric([torch.rand(3, 32, 48)], _generator(0))
    with pytest.raises(ValueError, match="crop_size"):
        as_size([16, 0], "crop_size")
    with pytest.raises(ValueError, match="hflip_p"):
        Augmentation(hflip_p=1.5)
    with pytest.raises(ValueError, match="crop_scale"):
        Augmentation(crop_scale=(0.8, 0.2))
    assert as_size(8, "crop_size") == (8, 8) and as_size(None, "crop_size") is None
