"""The clean-photo pool (vqe.data.photos): offline photographs, three disjoint splits (the people
in test), OpenCV's samples and video, seeded pairs."""

from __future__ import annotations

import warnings
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from vqe.conventions import WELL_EXPOSED_LUMA
from vqe.data import photos
from vqe.data.photos import (
    PEOPLE,
    POOL_PHOTOS,
    SPLIT_PHOTOS,
    TEST_PHOTOS,
    TEST_VIDEOS,
    TRAIN_PHOTOS,
    VALIDATION_PHOTOS,
    CleanPhotoPairs,
    load_photo,
    load_video_window,
    mean_luma,
    photo_pool,
    photo_tensor,
    reexpose,
)
from vqe.data.sampler import FrameKey


def _thumbnail(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    return (small - small.mean()) / (small.std() + 1e-9)


def test_every_pool_photo_loads_offline_as_rgb_uint8() -> None:
    for name in POOL_PHOTOS:
        image = load_photo(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        # 240: opencv:robin is 254 pixels high; HappyFish (194) is left out.
        assert min(image.shape[:2]) >= 240, f"{name} is too small to crop from"
        # A colour photograph, not a grey image repeated over three channels.
        assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 5, name


def test_splits_are_disjoint_photographs() -> None:
    assert TRAIN_PHOTOS and VALIDATION_PHOTOS and TEST_PHOTOS
    for (first, names), (second, others) in combinations(SPLIT_PHOTOS.items(), 2):
        assert not set(names) & set(others), (first, second)
        # Different names could still be one picture (skimage's cat is chelsea, OpenCV's
        # leuvenA/B one street): compare content.
        for name in names:
            for other in others:
                a, b = _thumbnail(load_photo(name)), _thumbnail(load_photo(other))
                assert (a * b).mean() < 0.9, f"{name} and {other} look like one photograph"


def test_people_are_tested_and_a_person_validates() -> None:
    assert "astronaut" in TEST_PHOTOS and set(TEST_PHOTOS) <= PEOPLE
    # Two people validate: matplotlib's and mahotas' portraits.
    assert {"grace_hopper", "luispedro"} <= set(VALIDATION_PHOTOS) & PEOPLE
    assert not set(TRAIN_PHOTOS) & PEOPLE  # no face to memorise
    if photos.opencv_file("opencv:messi5").is_file():
        missing = [n for n in photos.OPENCV_PHOTOS if not photos.opencv_file(n).is_file()]
        assert not missing, f"named but not in opencv-doc: {missing}"
        assert {"opencv:scenetext02", "opencv:robin", "opencv:plant"} <= set(TRAIN_PHOTOS)
        assert "opencv:messi5" in TEST_PHOTOS and "opencv:vtest" in TEST_VIDEOS
        assert {"opencv:home", "opencv:leuvenA"} <= set(VALIDATION_PHOTOS)


def test_the_demo_trains_on_the_train_split_only() -> None:
    config = OmegaConf.load(Path(__file__).parents[2] / "configs/dataset/demo.yaml")
    pairs = config.train_pairs
    assert pairs._target_.endswith("CleanPhotoPairs") and "photos" not in pairs
    assert CleanPhotoPairs.__init__.__defaults__[0] == TRAIN_PHOTOS  # photos= defaults to TRAIN


def test_missing_opencv_samples_drop_out_of_the_splits_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VQE_OPENCV_SAMPLES", str(tmp_path))
    monkeypatch.setattr(photos, "_warned_missing", [])
    with pytest.warns(UserWarning, match=f"{tmp_path}.*opencv:messi5"):
        assert photos._available(("astronaut", "opencv:messi5")) == ("astronaut",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        assert photos._available(("opencv:home",)) == ()
    photos._decoded.cache_clear()
    try:
        with pytest.raises(ValueError, match=f"{tmp_path}/messi5.jpg"):
            load_photo("opencv:messi5")
    finally:
        photos._decoded.cache_clear()


def test_the_test_video_reads_a_window_and_bad_videos_are_named(tmp_path: Path) -> None:
    if TEST_VIDEOS:
        frames = load_video_window(TEST_VIDEOS[0], 10, 3)
        assert len(frames) == 3 and frames[0].shape == (576, 768, 3) and frames[0].dtype == np.uint8
        assert not np.array_equal(frames[0], frames[2])  # people move
        with pytest.raises(ValueError, match="vtest.avi: ended after"):
            load_video_window(TEST_VIDEOS[0], 10_000, 2)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=f"{broken}: cannot be opened"):
        load_video_window(str(broken), 0, 2)


def test_a_known_alias_would_be_caught_by_the_content_check() -> None:
    # The check above must be able to fail: cat and chelsea are the same picture.
    a, b = _thumbnail(load_photo("cat")), _thumbnail(load_photo("chelsea"))
    assert (a * b).mean() > 0.99


def test_photo_pool_returns_the_split_in_order() -> None:
    test = photo_pool("test")
    assert len(test) == len(TEST_PHOTOS)
    np.testing.assert_array_equal(test[0], load_photo(TEST_PHOTOS[0]))
    assert len(photo_pool("train")) == len(TRAIN_PHOTOS)
    assert len(photo_pool("validation")) == len(VALIDATION_PHOTOS)
    with pytest.raises(ValueError, match="'train', 'validation' or 'test'"):
        photo_pool("val")  # type: ignore[arg-type]


def test_load_photo_returns_independent_copies() -> None:
    first = load_photo(TRAIN_PHOTOS[0])
    first[:] = 0
    assert load_photo(TRAIN_PHOTOS[0]).max() > 0


def test_grey_and_rgba_images_become_rgb() -> None:
    grey = load_photo("camera")
    assert grey.shape[2] == 3
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert load_photo("logo").shape[2] == 3  # RGBA in skimage


def test_unknown_and_non_image_names_are_refused_with_the_pool_named() -> None:
    with pytest.raises(KeyError, match="nope.*astronaut"):
        load_photo("nope")
    with pytest.raises(KeyError, match="download_all"):
        load_photo("download_all")  # a skimage.data function that downloads, not an image


def test_photos_that_need_a_download_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def needs_pooch() -> np.ndarray:
        raise ModuleNotFoundError("The requested file ... requires the installation of pooch")

    monkeypatch.setattr(photos.skimage.data, "pretend_download", needs_pooch, raising=False)
    with pytest.raises(ValueError, match="pretend_download.*not bundled"):
        load_photo("pretend_download")


# --------------------------------------------------------------------------- pairs


def _identity(y: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    return y.clone()


def test_pairs_are_reproducible_per_seed_epoch_and_index() -> None:
    pairs = CleanPhotoPairs(crop_size=64, samples_per_epoch=8, seed=3)
    again = CleanPhotoPairs(crop_size=64, samples_per_epoch=8, seed=3)
    a, b = pairs[FrameKey(5, 2)], again[FrameKey(5, 2)]
    torch.testing.assert_close(a["x"], b["x"], rtol=0, atol=0)
    torch.testing.assert_close(a["y"], b["y"], rtol=0, atol=0)
    other_epoch = pairs[FrameKey(5, 3)]
    assert not torch.equal(a["y"], other_epoch["y"])
    other_seed = CleanPhotoPairs(crop_size=64, samples_per_epoch=8, seed=4)[FrameKey(5, 2)]
    assert not torch.equal(a["x"], other_seed["x"])


def test_items_are_degraded_supervised_crops_of_the_listed_photos() -> None:
    pairs = CleanPhotoPairs(crop_size=(48, 64), samples_per_epoch=2 * len(TRAIN_PHOTOS))
    seen = set()
    for index in range(len(pairs)):
        item = pairs[index]
        assert item["x"].shape == item["y"].shape == (3, 48, 64)
        assert item["has_target"] and item["subset"] == "synthetic"
        assert float((item["x"] - item["y"]).abs().mean()) > 0.01  # the input is degraded
        seen.add(item["video_id"])
    assert seen == {photos.photo_source(name) for name in TRAIN_PHOTOS}
    held_out = {photos.photo_source(name) for name in VALIDATION_PHOTOS + TEST_PHOTOS}
    assert not seen & held_out


def test_a_full_scale_window_is_the_resized_photo() -> None:
    # scale 1, aspect 1 on a square photo: the window is the whole photo, resized (maybe flipped).
    pairs = CleanPhotoPairs(
        photos=("astronaut",),
        crop_size=64,
        scale=(1.0, 1.0),
        ratio=(1.0, 1.0),
        hflip_p=0.0,
        pair_synthesis=_identity,
        reference_luma=None,
    )
    photo = load_photo("astronaut")
    expected = cv2.resize(photo, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    got = pairs[0]["y"].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).mean() < 0.02


def test_windows_vary_in_scale_and_flip() -> None:
    pairs = CleanPhotoPairs(
        photos=("astronaut",),
        crop_size=32,
        samples_per_epoch=16,
        scale=(0.2, 1.0),
        pair_synthesis=_identity,
    )
    targets = torch.stack([pairs[i]["y"] for i in range(16)])
    assert torch.unique(targets.flatten(1).mean(1)).numel() == 16  # no two crops alike


def test_bad_settings_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="photos is empty"):
        CleanPhotoPairs(photos=())
    with pytest.raises(ValueError, match="samples_per_epoch"):
        CleanPhotoPairs(samples_per_epoch=0)
    with pytest.raises(ValueError, match="scale"):
        CleanPhotoPairs(scale=(0.0, 1.5))
    with pytest.raises(KeyError, match="unknown photo"):
        CleanPhotoPairs(photos=("nope",))


@pytest.mark.parametrize("luma", [0.2, WELL_EXPOSED_LUMA, 0.7])
def test_reexpose_reaches_the_mean_luma_with_a_tone_curve(luma: float) -> None:
    rocket = photo_tensor("rocket")  # a dusk scene, mean luma ≈ 0.24
    out = reexpose(rocket, luma)
    assert abs(mean_luma(out) - luma) < 1e-3
    # A power curve: pixel order, black and white stay; nothing clips.
    flat_in, flat_out = rocket.flatten(), out.flatten()
    order = torch.argsort(flat_in)
    assert bool((flat_out[order].diff() >= -1e-6).all())
    assert float(out.min()) == pytest.approx(float(rocket.min()), abs=1e-6)
    assert float(out.max()) <= 1.0


def test_pairs_teach_one_well_lit_exposure_by_default() -> None:
    # Whole-photo windows of a dark and a bright photograph: both targets sit at the reference
    # exposure by default; reference_luma=None keeps each photograph's own.
    def whole_photo_targets(**options: object) -> list[float]:
        pairs = CleanPhotoPairs(
            photos=("rocket", "chelsea"), crop_size=64, scale=(1.0, 1.0),
            pair_synthesis=_identity, **options,
        )  # fmt: skip
        return [mean_luma(pairs[index]["y"]) for index in range(2)]

    rexposed = whole_photo_targets()
    assert rexposed == pytest.approx([WELL_EXPOSED_LUMA] * 2, abs=0.03)
    own = whole_photo_targets(reference_luma=None)
    assert own[0] < 0.3 < own[1]  # rocket dark, chelsea bright: the dusk prior it would teach
    # Half-way in log luma: the geometric mean of each photo's own and the reference.
    half = whole_photo_targets(reexpose_strength=0.5)
    expected = [(luma * WELL_EXPOSED_LUMA) ** 0.5 for luma in own]
    assert half == pytest.approx(expected, abs=0.03)
    assert own[0] < half[0] < WELL_EXPOSED_LUMA  # the dusk scene lifted half-way (in log)
    with pytest.raises(ValueError, match="reexpose_strength"):
        CleanPhotoPairs(photos=("rocket",), reexpose_strength=1.5)


def test_a_folder_of_own_photographs_joins_the_pool(tmp_path) -> None:
    """Users train on their own clean photos: files and folders expand, bad entries are named."""
    import cv2
    import numpy as np
    import pytest

    from vqe.data.photos import CleanPhotoPairs, expand_photos

    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not a photo")
    assert expand_photos(["chelsea", str(folder)]) == (
        "chelsea", str(folder / "a.jpg"), str(folder / "b.png"),
    )  # fmt: skip
    pairs = CleanPhotoPairs([str(folder)], crop_size=32, samples_per_epoch=4, reference_luma=None)
    item = pairs[0]
    assert item["y"].shape == (3, 32, 32) and item["source"] == str(folder / "a.jpg")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        expand_photos([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        expand_photos([str(tmp_path / "empty")])


def test_mixed_targets_take_one_side_from_another_photo() -> None:
    """mix_p: a cut at 30–70 % of a side, beyond it a window of another photo; the unmixed
    items are exactly those of mix_p=0 (the mix draws from its own seed stream)."""
    settings = dict(photos=("chelsea", "coffee"), crop_size=(40, 60), samples_per_epoch=16)
    plain, mixed = CleanPhotoPairs(**settings), CleanPhotoPairs(**settings, mix_p=0.5)
    changed = 0
    for index in range(16):
        clean, composite = plain[index]["y"], mixed[index]["y"]
        if torch.equal(clean, composite):
            continue
        changed += 1
        columns = (composite != clean).any(dim=0).any(dim=0).nonzero().flatten()
        rows = (composite != clean).any(dim=0).any(dim=1).nonzero().flatten()
        vertical = len(rows) > 0.9 * 40  # a vertical cut changes every row
        cut = int(columns.min()) if vertical else int(rows.min())
        side = 60 if vertical else 40
        assert 0.3 * side - 1 <= cut <= 0.7 * side + 1  # one side kept, one replaced
        kept = composite[:, :, :cut] if vertical else composite[:, :cut]
        torch.testing.assert_close(kept, clean[:, :, :cut] if vertical else clean[:, :cut])
        # The degradation acts on the composite, the item stays a supervised pair of it.
        assert mixed[index]["x"].shape == composite.shape
    assert 4 <= changed <= 12  # about half of 16
    with pytest.raises(ValueError, match="mix_p"):
        CleanPhotoPairs(mix_p=1.5)
