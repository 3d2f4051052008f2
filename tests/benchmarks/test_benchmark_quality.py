"""The quality benchmark end to end at CI size (``--tiny``): staged training through train(cfg),
degraded validation and test clips (photos and the test video), the real vqe.enhance path and
the baseline, every metric per clip and per split, the report files and the face-crop strip.

No quality target here — the tiny model trains for two steps per stage; the full run
(``vqe bench-quality``) is where the targets are checked.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vqe.cli.bench import quality
from vqe.cli.bench.quality_clips import (
    FOREGROUND,
    crop_box,
    face_box,
    framed_on_face,
    make_clip,
    make_clips,
    make_video_clip,
    split_sources,
)
from vqe.cli.bench.quality_recipe import STAGES, _max_time, timed_overrides, wall_clock_cosine
from vqe.data.person_region import ellipse_membership
from vqe.data.photos import (
    PEOPLE,
    TEST_PHOTOS,
    TEST_VIDEOS,
    TRAIN_PHOTOS,
    VALIDATION_PHOTOS,
    load_photo,
)
from vqe.video import probe, read_frames


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("quality")
    # Trains on the demo set's pool: the default demo cache ($VQE_DEMO_DIR), built on first use.
    code = quality.main(["--tiny", "--out", str(out), "--frames", "6"])
    return out, code


def _expected_sources() -> list[str]:
    """The tiny run's sources: the first photo of each split, then the test videos."""
    return [VALIDATION_PHOTOS[0], TEST_PHOTOS[0], *TEST_VIDEOS]


def test_tiny_run_writes_every_output_with_finite_numbers(tiny_run: tuple[Path, int]) -> None:
    out, code = tiny_run
    assert code == 0
    result = json.loads((out / "quality.json").read_text())
    clips = result["clips"]
    uniform = [clip for clip in clips if clip["lighting"] == "uniform"]
    assert [clip["photo"] for clip in uniform] == _expected_sources()
    assert [clip["split"] for clip in uniform] == ["validation"] + ["test"] * (len(uniform) - 1)
    # Then a backlit clip of each of those photographs that shows a person (where its face is
    # found at the tiny size): never of another source.
    backlit = [clip["photo"] for clip in clips if clip["lighting"] == "foreground"]
    assert set(backlit) <= set(_expected_sources()) & PEOPLE
    assert all(clip["person"] == (clip["photo"] in PEOPLE) for clip in clips)
    assert set(result["methods"]) == {method.key for method in quality.METHODS}
    available = {"psnr", "person_psnr", "ssim", "ciede2000", "flicker", "warping_error"}
    for key, entry in result["methods"].items():
        means = entry["means"]
        assert set(means) == set(quality.METRICS)
        for metric in available:
            assert means[metric] is not None and math.isfinite(means[metric]), (key, metric)
        assert len(entry["per_clip"]) == len(clips)
        assert set(entry["means_by_split"]) == {"validation", "test"}
        assert set(entry["foreground_means_by_split"]) == {
            c["split"] for c in clips if c["lighting"] == "foreground"
        }
        assert entry["means"] == entry["means_by_split"]["test"]  # report test
        # Each split's mean is the mean of its own clips only.
        validation = [
            entry["per_clip"][c["name"]]["psnr"]
            for c in clips
            if c["split"] == "validation" and c["lighting"] == "uniform"
        ]
        assert entry["means_by_split"]["validation"]["psnr"] == pytest.approx(np.mean(validation))
        # LPIPS is a number exactly when its pretrained backbone is on disk, else explained.
        if means["lpips"] is None:
            assert "LPIPS" in result["metric_notes"]
        else:
            assert math.isfinite(means["lpips"])
    assert 0 < result["methods"]["input"]["means"]["ssim"] <= 1
    targets = result["targets"]
    assert math.isfinite(targets["psnr_gain_over_baseline_db"]) and targets["split"] == "test"
    # The five targets, judged on the test clips; a verdict's failing clips are test clips.
    test_clips = {c["name"] for c in clips if c["split"] == "test"}
    assert len(targets["verdicts"]) == 6  # PSNR mean, PSNR per clip, ΔE, cast, SSIM, flicker
    for verdict in targets["verdicts"]:
        assert isinstance(verdict["met"], bool) and set(verdict["failing_clips"]) <= test_clips
    assert targets["all_met"] == all(v["met"] for v in targets["verdicts"])

    stages = result["recipe"]["stages"]
    assert [stage["experiment"] for stage in stages] == [stage.experiment for stage in STAGES]
    assert all(stage["steps"] == 2 for stage in stages)
    experiments = result["recipe"]["experiments"]
    assert all(
        not entry["loss"].get("vqa") and not entry["loss"].get("dover")
        for entry in experiments.values()
    )
    assert experiments["stage1"]["model"] == "lut" and experiments["stage2"]["freeze_lut"]

    table = (out / "quality.md").read_text()
    for method in quality.METHODS:
        assert f"| {method.label} |" in table
    assert "PSNR (dB)" in table and "CIEDE2000" in table and "wall time" in table.lower()
    assert "## validation split" in table and "## test split" in table and "cast" in table
    for clip in clips:  # one per-clip row each, with its split
        assert f"| {clip['name']} | {clip['split']} |" in table


def test_tiny_run_leaves_checkpoints_videos_and_a_labelled_strip(
    tiny_run: tuple[Path, int],
) -> None:
    out, _ = tiny_run
    clips = json.loads((out / "quality.json").read_text())["clips"]
    for name in ("stage1.ckpt", "final.ckpt"):
        state = torch.load(out / name, map_location="cpu", weights_only=True)["state_dict"]
        assert any(key.startswith("enhancer.lut.") for key in state)
    final = torch.load(out / "final.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(key.startswith("enhancer.unet.") for key in final)
    inputs = sorted((out / "work" / "inputs").glob("*.mp4"))
    assert [path.stem for path in inputs] == sorted(clip["name"] for clip in clips)
    for method in ("baseline", "stage1", "final"):
        outputs = sorted((out / "work" / method).glob("*.mp4"))
        assert [path.name for path in outputs] == [path.name for path in inputs]
        info = probe(outputs[0])
        assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")  # the official encoding
        assert len(list(read_frames(outputs[0]))) == 6
    strip = np.asarray(Image.open(out / "quality.png"))
    width, height = quality.TINY["size"]
    rows = len(clips)
    # A row per clip: 5 frames, then 4 square crops (input / baseline / final / target).
    assert strip.shape[0] > rows * height and strip.shape[1] >= 5 * width + 4 * height


def test_eval_only_remeasures_the_checkpoints_and_keeps_the_recipe(
    tiny_run: tuple[Path, int], tmp_path: Path
) -> None:
    out, _ = tiny_run
    for name in ("stage1.ckpt", "final.ckpt", "quality.json"):
        shutil.copy(out / name, tmp_path / name)
    before = json.loads((out / "quality.json").read_text())
    assert quality.main(["--tiny", "--eval-only", "--out", str(tmp_path), "--frames", "6"]) == 0
    after = json.loads((tmp_path / "quality.json").read_text())
    assert after["recipe"]["stages"] == before["recipe"]["stages"]  # not retrained
    assert after["recipe"]["mode"].endswith("re-measured with --eval-only")
    # The same checkpoints on the same clips: the same numbers — up to the methods' own H.264
    # encode, which (encoder defaults, as in a submission) is not bit-exact across thread
    # settings: one clip moved 0.02 dB between a process that trained first and one that did not.
    assert after["clips"] == before["clips"]
    for method in ("baseline", "final"):
        assert after["methods"][method]["means"]["psnr"] == pytest.approx(
            before["methods"][method]["means"]["psnr"], abs=0.05
        )


def test_test_clips_are_deterministic_and_cover_only_test_photos(tmp_path: Path) -> None:
    assert not set(TEST_PHOTOS) & set(TRAIN_PHOTOS)
    first = make_clips(tmp_path / "a", 1, 4, 64, 48, seed=3)
    second = make_clips(tmp_path / "b", 1, 4, 64, 48, seed=3)
    assert first[0].photo in TEST_PHOTOS
    a, b = list(read_frames(first[0].input_path)), list(read_frames(second[0].input_path))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(first[0].target, second[0].target, strict=True))
    assert first[0].degradations["flicker"] and first[0].degradations["h264_crf"]
    # The input is darker than its clean target (dim key light).
    assert np.mean(a) < np.mean(first[0].target)


def test_a_clip_is_drawn_from_its_source_not_its_place_in_the_list(tmp_path: Path) -> None:
    # Adding a photograph to a split must not redraw the clips of the others.
    first = make_clip(tmp_path / "a", 0, "astronaut", 4, 64, 48, seed=3)
    later = make_clip(tmp_path / "b", 7, "astronaut", 4, 64, 48, seed=3)
    second_draw = make_clip(tmp_path / "c", 0, "astronaut", 4, 64, 48, seed=3, copy=1)
    assert first.degradations == later.degradations
    a, b = list(read_frames(first.input_path)), list(read_frames(later.input_path))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert second_draw.degradations != first.degradations


def test_clip_sources_are_validation_then_test_photos_and_the_video() -> None:
    sources = split_sources(("validation", "test"))
    assert [name for name, _ in sources] == [*VALIDATION_PHOTOS, *TEST_PHOTOS, *TEST_VIDEOS]
    assert {kind for name, kind in sources if name in TEST_VIDEOS} <= {"video"}
    assert not {name for name, _ in sources} & set(TRAIN_PHOTOS)
    assert [name for name, _ in split_sources(("test",), max_photos=1)] == [
        TEST_PHOTOS[0], *TEST_VIDEOS,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="'validation' or 'test'"):
        split_sources(("train",))


@pytest.mark.skipif(not TEST_VIDEOS, reason="OpenCV's sample video is not installed")
def test_a_video_clip_keeps_the_video_motion_and_is_degraded(tmp_path: Path) -> None:
    clip = make_video_clip(tmp_path, 0, TEST_VIDEOS[0], 4, 64, 48, seed=3)
    again = make_video_clip(tmp_path / "again", 0, TEST_VIDEOS[0], 4, 64, 48, seed=3)
    assert (clip.split, clip.kind, clip.person) == ("test", "video", True)
    assert all(np.array_equal(a, b) for a, b in zip(clip.target, again.target, strict=True))
    assert clip.target[0].shape == (48, 64, 3)
    # Real motion: consecutive clean frames differ (people walk), yet it is one scene.
    changes = [np.abs(b.astype(int) - a).mean() for a, b in zip(clip.target, clip.target[1:])]
    assert min(changes) > 0 and max(changes) < 30
    decoded = list(read_frames(clip.input_path))
    assert len(decoded) == 4 and np.mean(decoded) < np.mean(clip.target)


def test_the_strip_crops_the_face_when_there_is_one() -> None:
    portrait = framed_on_face(load_photo("astronaut"), 16 / 9)
    assert portrait.shape[1] / portrait.shape[0] == pytest.approx(16 / 9, rel=0.01)
    face = face_box(portrait)
    assert face is not None
    left, top, side, _ = crop_box(portrait, face)
    # The crop holds the whole face, enlarged, and stays inside the frame.
    assert left <= face[0] and top <= face[1] and side >= max(face[2], face[3])
    assert left + side <= portrait.shape[1] and top + side <= portrait.shape[0]
    flat = np.full((48, 64, 3), 128, dtype=np.uint8)
    assert face_box(flat) is None
    assert crop_box(flat, None) == (20, 12, 24, 24)  # the centre, half the shorter side


def test_the_wall_clock_schedule_follows_time_not_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("vqe.cli.bench.quality_recipe.time.perf_counter", lambda: now[0])
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1.0)
    scheduler = wall_clock_cosine(optimizer, total_steps=3, seconds=10.0)
    assert optimizer.param_groups[0]["lr"] < 0.01  # the warm-up starts low
    rates = []
    for elapsed in (0.5, 1.0, 5.25, 10.0, 50.0):  # however many steps fit, time sets the rate
        now[0] = 100.0 + elapsed
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[1] == pytest.approx(1.0, abs=0.01)  # warm-up over at 5 % of the time
    assert rates[2] == pytest.approx(0.505, abs=0.01)  # half-way down the cosine (to 0.01)
    assert rates[3] == pytest.approx(0.01) and rates[4] == pytest.approx(0.01)


def test_a_timed_stage_is_stopped_by_max_time() -> None:
    assert _max_time(61.2) == "00:00:01:02" and _max_time(0) == "00:00:00:01"
    overrides = timed_overrides(90.0)
    assert "+trainer.max_time=00:00:01:30" in overrides and "trainer.max_steps=-1" in overrides
    assert any(item.endswith("wall_clock_cosine") for item in overrides)


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        quality.parse_args(["--size", "65x48"])
    with pytest.raises(SystemExit):
        quality.parse_args(["--splits", "train,test"])
    assert quality.parse_args(["--splits", "test"]).splits == ("test",)
    with pytest.raises(SystemExit):
        quality.parse_args(["--smoothing-alpha", "0"])
    assert "alpha" in capsys.readouterr().err


def test_a_backlit_clip_darkens_the_person_and_the_person_psnr_sees_it(tmp_path: Path) -> None:
    uniform = make_clip(tmp_path / "u", 0, "astronaut", 4, 192, 108, seed=5)
    backlit = make_clip(tmp_path / "b", 0, "astronaut", 4, 192, 108, seed=5, lighting=FOREGROUND)
    assert backlit.lighting == FOREGROUND and backlit.person_region is not None
    assert backlit.degradations["subject"]["gain"] <= 0.6
    # The same draws otherwise: same clean frames, same person.
    assert all(np.array_equal(a, b) for a, b in zip(uniform.target, backlit.target, strict=True))
    inside = ellipse_membership(108, 192, backlit.person_region, softness=0.0) > 0
    assert 0.1 < inside.mean() < 0.9  # a region, not the whole frame

    def person_to_room(frames: list[np.ndarray]) -> float:
        luma = np.mean([frame.mean(axis=2) for frame in frames], axis=0)
        return float(luma[inside].mean() / luma[~inside].mean())

    # Every other draw is shared, so the person's light alone sets the two clips apart.
    backlit_ratio = person_to_room(list(read_frames(backlit.input_path)))
    assert backlit_ratio < 0.8 * person_to_room(list(read_frames(uniform.input_path)))
    # The person-region PSNR counts only the person: a room left wrong does not change it.
    wrong_room = [np.where(inside[..., None], t, 0).astype(np.uint8) for t in backlit.target]
    assert quality.person_psnr(wrong_room, backlit.target, backlit.person_region) > 60
    assert quality.person_psnr(wrong_room, backlit.target, None) is None
