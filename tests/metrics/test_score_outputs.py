"""vqe score-outputs and vqe synthetic-inputs (vqe.cli.score_outputs, vqe.cli.synthetic_inputs).

A tiny data root in the official layout (one synthetic jpg pair of 3 frames, one 20 fps
unsupervised clip of 2 frames — 3 frames at 30 fps), RANDOM critics with the cheapest DOVER
setting: the values mean nothing; the tests compare them with the training test loop and with an
independent recomputation.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from model_helpers import write_checkpoint
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from submission_checks import RANDOM_CRITICS_ZIP, UPLOAD_ZIP, check_run_submission

from vqe import schema
from vqe.cli.score_outputs import main
from vqe.cli.synthetic_inputs import main as synthetic_main
from vqe.conventions import rgb_uint8_to_tensor
from vqe.critics.dover import DOVER, build_dover
from vqe.critics.vqa import VQA, load_vqa
from vqe.dataprep.build import build_dataset
from vqe.metrics.full_reference import build_frame_quality
from vqe.metrics.method_scores import score_outputs
from vqe.metrics.score import MISSING_RMSE, MISSING_SCORE
from vqe.metrics.synthetic_inputs import encode_lossless, read_rgb
from vqe.models.loading import enhancer_from_preset
from vqe.training.evaluation import evaluate
from vqe.video import probe, read_frames, write_video

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
HEIGHT, WIDTH = 48, 64
SYNTHETIC, UNSUPERVISED = "video_0001", "video_0002"
CHEAP_DOVER = {"num_frames": 2, "num_technical_clips": 1}
CHEAP_ARGS = ["--allow-random-critics", "--dover-num-frames", "2", "--dover-technical-clips", "1"]


def smooth_frame(rng: np.random.Generator) -> np.ndarray:
    """A random but smooth RGB frame (compresses like a picture, not like noise)."""
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def write_data_root(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    video_dir = root / "test" / "supervised" / "synthetic" / SYNTHETIC
    for side in ("x", "y"):
        (video_dir / side).mkdir(parents=True)
        for number in range(1, 4):
            path = video_dir / side / f"frame_{number:04d}.jpg"
            cv2.imwrite(str(path), smooth_frame(rng)[:, :, ::-1].copy())
    clip = [smooth_frame(rng) for _ in range(2)]
    write_video(root / "test" / "unsupervised" / f"{UNSUPERVISED}_x.mp4", clip, fps=20)
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data_root(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def critics() -> tuple:
    return load_vqa(None, allow_random=True), build_dover(None, True, **CHEAP_DOVER)


@pytest.fixture(scope="module")
def synthetic_mp4s(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic_inputs")
    assert synthetic_main(["--data-root", str(data_root), "--out", str(out), "--no-progress"]) == 0
    return out


def identity_outputs(data_root: Path, synthetic_mp4s: Path, folder: Path) -> Path:
    """What an identity model writes, losslessly: the lossless synthetic inputs, and each
    unsupervised input resampled at 30 fps as the enhancers do."""
    folder.mkdir()
    for path in synthetic_mp4s.glob("*.mp4"):
        (folder / path.name).write_bytes(path.read_bytes())
    for source in (data_root / "test" / "unsupervised").glob("*.mp4"):
        encode_lossless(folder / source.name, read_frames(source, 30))
    return folder


def read_table(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return {row[0]: [float(value) for value in row[1:]] for row in rows}


def test_synthetic_inputs_decode_to_the_jpg_frames(data_root: Path, synthetic_mp4s: Path) -> None:
    path = synthetic_mp4s / f"{SYNTHETIC}.mp4"
    jpgs = sorted((data_root / "test/supervised/synthetic" / SYNTHETIC / "x").glob("*.jpg"))
    decoded = list(read_frames(path))
    assert len(decoded) == len(jpgs) == 3
    for frame, jpg in zip(decoded, jpgs):
        np.testing.assert_array_equal(frame, read_rgb(jpg))  # lossless: the test loop's pixels
    assert probe(path).fps == 30


def test_synthetic_inputs_list_a_bad_pair_and_finish_the_rest(tmp_path: Path) -> None:
    root = write_data_root(tmp_path / "data")
    broken = root / "test/supervised/synthetic/video_0009"
    (broken / "x").mkdir(parents=True)
    (broken / "y").mkdir()
    cv2.imwrite(str(broken / "x" / "frame_0001.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    out = tmp_path / "mp4"
    code = synthetic_main(["--data-root", str(root), "--out", str(out), "--crf", "18",
                           "--no-progress"])  # fmt: skip
    assert code == 1
    assert [path.name for path in out.iterdir()] == [f"{SYNTHETIC}.mp4"]
    assert probe(out / f"{SYNTHETIC}.mp4").pix_fmt == "yuv420p"  # --crf 18: the official encoding


def write_identity_checkpoint(path: Path) -> Path:
    """A tiny enhancer that is the identity up to float rounding, as train_vqe.py saves it.

    (The untrained one is only within ~1e-4 of it: its near-zero inits are random, not zero.)"""
    enhancer = enhancer_from_preset("tiny")
    with torch.no_grad():
        for near_zero in (enhancer.lut.basis[1:], enhancer.lut.predictor.head.weight,
                          enhancer.unet.tail.weight):  # fmt: skip
            near_zero.zero_()
    return write_checkpoint(enhancer, "tiny", path)


def test_an_identity_model_scores_the_same_as_in_the_test_loop(
    tmp_path: Path, data_root: Path, synthetic_mp4s: Path, critics: tuple
) -> None:
    # The training test loop on the indexed data root (frames extracted at 30 fps).
    index_root = tmp_path / "index"
    assert not build_dataset(data_root, index_root, fps=30, progress=False).failed
    loop_dir = tmp_path / "test_loop"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="evaluate",
            overrides=[
                f"paths.output_dir={loop_dir}",
                f"ckpt={write_identity_checkpoint(tmp_path / 'identity.ckpt')}",
                "dataset=official",
                f"dataset.path={index_root}",
                "evaluation.subset=true",
                "dataloader.num_workers=0",
                "dataloader.pin_memory=false",
                "allow_random_critics=true",
                "evaluation.critics.dover.num_frames=2",
                "evaluation.critics.dover.num_technical_clips=1",
            ],
        )
    loop = evaluate(cfg)

    # The same model's output as videos, scored from the folder.
    enhanced = identity_outputs(data_root, synthetic_mp4s, tmp_path / "enhanced")
    out = tmp_path / "scored"
    report = score_outputs(enhanced, data_root, out, *critics, progress=False)
    assert report.ok and sorted(report.scored) == [SYNTHETIC, UNSUPERVISED]

    for name in (schema.SUPERVISED_METRICS_CSV, schema.UNSUPERVISED_METRICS_CSV):
        expected = read_table(loop_dir / "submission" / name)
        measured = read_table(out / "submission" / name)
        assert list(measured) == list(expected)
        for video, values in expected.items():
            assert measured[video] == pytest.approx(values, rel=1e-5, abs=1e-5), (name, video)
    assert report.score is not None
    assert report.score.score == pytest.approx(loop["score"], rel=1e-5)
    assert (out / "score.json").is_file()
    check_run_submission(out, supervised_rows=1, unsupervised_rows=1, zip_name=RANDOM_CRITICS_ZIP)
    assert json.loads((out / "score.json").read_text())["critics"] == "random"


def test_scores_are_those_of_vqa_of_output_and_input_and_the_official_rmse(
    tmp_path: Path, data_root: Path, critics: tuple
) -> None:
    """A non-identity method, recomputed independently: RMSE from the uint8 values with numpy,
    [p, a1 … a11] from VQA(ŷ, x, DOVER(ŷ), DOVER(x)) in that order."""
    enhanced = tmp_path / "enhanced"
    target_dir = data_root / "test/supervised/synthetic" / SYNTHETIC / "y"
    targets = [read_rgb(path) for path in sorted(target_dir.glob("*.jpg"))]
    outputs = [np.clip(frame.astype(int) + 40, 0, 255).astype(np.uint8) for frame in targets]
    encode_lossless(enhanced / f"{SYNTHETIC}.mp4", outputs)
    source = data_root / "test" / "unsupervised" / f"{UNSUPERVISED}_x.mp4"
    inputs = list(read_frames(source, 30))
    brightened = [np.clip(frame.astype(int) * 2, 0, 255).astype(np.uint8) for frame in inputs]
    encode_lossless(enhanced / source.name, brightened)

    out = tmp_path / "scored"
    quality = build_frame_quality(lpips=False)
    report = score_outputs(
        enhanced, data_root, out, *critics, batch_size=2, progress=False, quality=quality
    )
    assert report.ok
    check_run_submission(out, supervised_rows=1, unsupervised_rows=1, zip_name=RANDOM_CRITICS_ZIP)

    def vqa_scale(frames: list[np.ndarray]) -> np.ndarray:
        return (np.stack(frames).astype(np.float64) - 128.0) / 128.0

    per_frame = np.sqrt(((vqa_scale(outputs) - vqa_scale(targets)) ** 2).mean(axis=(1, 2, 3)))
    supervised = read_table(out / "submission" / schema.SUPERVISED_METRICS_CSV)
    assert supervised[SYNTHETIC][0] == pytest.approx(per_frame.mean(), rel=1e-5)

    # tables/quality.csv: scikit-image PSNR and SSIM per frame, averaged over the video.
    def unit(frame: np.ndarray) -> np.ndarray:
        return frame.astype(np.float64) / 255

    per_frame_quality = [
        [
            peak_signal_noise_ratio(unit(target), unit(output), data_range=1.0),
            structural_similarity(
                unit(output), unit(target), data_range=1.0, channel_axis=2,
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            ),
        ]
        for output, target in zip(outputs, targets)
    ]  # fmt: skip
    with (out / "tables" / "quality.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [schema.VIDEO_KEY, schema.SUBSET, "frames", "psnr", "ssim"]
    assert rows[1][:3] == [SYNTHETIC, schema.SUBSET_SYNTHETIC, "3"] and len(rows) == 2
    expected_quality = np.mean(per_frame_quality, axis=0)
    assert [float(value) for value in rows[1][3:]] == pytest.approx(expected_quality, rel=1e-5)
    assert report.results is not None
    assert report.results.quality_means["psnr"] == pytest.approx(expected_quality[0], rel=1e-5)

    vqa, dover = critics
    enhanced_frames = torch.stack([rgb_uint8_to_tensor(frame) for frame in brightened])
    input_frames = torch.stack([rgb_uint8_to_tensor(frame) for frame in inputs])
    with torch.no_grad():
        p, aux, _ = vqa.compare(
            enhanced_frames, input_frames, dover(enhanced_frames), dover(input_frames)
        )
    expected = torch.cat([p, aux], dim=1).mean(dim=0).tolist()
    unsupervised = read_table(out / "submission" / schema.UNSUPERVISED_METRICS_CSV)
    assert len(inputs) == 3  # 2 frames at 20 fps, resampled to 30 fps like the test loop's index
    assert unsupervised[UNSUPERVISED] == pytest.approx(expected, abs=1e-5)


def test_bad_videos_are_listed_scored_as_missing_and_fail_the_run(
    tmp_path: Path, data_root: Path, synthetic_mp4s: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enhanced = tmp_path / "enhanced"
    enhanced.mkdir()
    two_of_three = list(read_frames(synthetic_mp4s / f"{SYNTHETIC}.mp4"))[:2]
    encode_lossless(enhanced / f"{SYNTHETIC}.mp4", two_of_three)
    (enhanced / f"{UNSUPERVISED}_x.mp4").write_bytes(b"not a video")
    out = tmp_path / "scored"
    args = ["--enhanced", str(enhanced), "--data-root", str(data_root), "--out", str(out)]
    assert main([*args, *CHEAP_ARGS, "--no-progress"]) == 1
    printed = capsys.readouterr().out
    assert f"{enhanced / SYNTHETIC}.mp4 has 2 frames but its targets" in printed
    assert f"{UNSUPERVISED}_x.mp4" in printed and "FAILED 2" in printed
    # The rows are written as missing and get the official fill values.
    unsupervised = read_table(out / "submission" / schema.UNSUPERVISED_METRICS_CSV)
    assert all(math.isnan(value) for value in unsupervised[UNSUPERVISED])
    report = (out / "score.json").read_text()
    assert f'"rmse": {MISSING_RMSE}' in report and f'"m_1": {MISSING_SCORE}' in report
    # Random critics (--allow-random-critics): the printed score and score.json say so, and
    # the zip does not carry the upload's name.
    assert re.search(r"^score  -?[\d.]+ \(random critics: not a challenge score\)$", printed, re.M)
    assert json.loads(report)["critics"] == "random"
    assert (out / RANDOM_CRITICS_ZIP).is_file() and not (out / UPLOAD_ZIP).exists()


def test_a_missing_video_is_reported(tmp_path: Path, data_root: Path, critics: tuple) -> None:
    enhanced = tmp_path / "empty"
    enhanced.mkdir()
    out = tmp_path / "scored"
    report = score_outputs(enhanced, data_root, out, *critics, progress=False)
    assert not report.ok
    assert sorted(path.name for path in report.missing) == [
        f"{SYNTHETIC}.mp4",
        f"{UNSUPERVISED}_x.mp4",
    ]
    assert report.score is not None and report.score.means[schema.RMSE] == MISSING_RMSE
    with pytest.raises(FileExistsError, match="--overwrite"):  # before any scoring work
        score_outputs(enhanced, data_root, out, *critics, progress=False)


def test_arguments_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--enhanced", str(tmp_path), "--data-root", str(tmp_path), "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--vqa", str(tmp_path / "VQA.ckpt"), "--allow-random-critics"])
    assert exit_info.value.code == 2
    assert "VQA.ckpt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args)  # no weights and no --allow-random-critics
    assert "--allow-random-critics" in capsys.readouterr().err


def test_repeated_frames_are_scored_once(critics: tuple) -> None:
    """A repeated (enhanced, input) pair reuses its scores; a repeated input its DOVER(x); the
    rows equal scoring every frame."""
    from vqe.critics.scorer import build_critic_scorer
    from vqe.metrics.method_scores import DistinctPairScorer

    rng = np.random.default_rng(3)
    a, b, c = (smooth_frame(rng) for _ in range(3))
    pairs = [(a, b), (a, b), (c, b), (a, b)]  # 2 distinct pairs, 1 distinct input
    scorer = build_critic_scorer(*critics, input_dover="auto")
    calls: list[int] = []
    dover = scorer.dover
    scorer.dover = lambda frames: calls.append(len(frames)) or dover(frames)
    distinct = DistinctPairScorer(scorer, batch_size=1, device=torch.device("cpu"))
    keys = [distinct.add(output, source) for output, source in pairs]
    distinct.flush()
    assert len(distinct.rows) == 2 and distinct.pairs_seen == 4
    assert calls == [1, 1, 1]  # DOVER(ŷ) a, DOVER(x) b, DOVER(ŷ) c — never DOVER(x) again
    outputs = torch.stack([rgb_uint8_to_tensor(o) for o, _ in pairs])
    inputs = torch.stack([rgb_uint8_to_tensor(s) for _, s in pairs])
    scorer.dover = dover
    with torch.no_grad():
        expected = scorer(outputs, inputs, exact=True).metric_row()
    torch.testing.assert_close(torch.stack([distinct.rows[key] for key in keys]), expected)


def test_critics_from_weight_files_keep_the_upload_zip_and_are_named(
    tmp_path: Path, data_root: Path, synthetic_mp4s: Path
) -> None:
    """Critics loaded from weight files (files in the official formats, here with untrained
    weights): the zip is submission.zip, and score.json names each file with its digest."""
    vqa_file, dover_file = tmp_path / "VQA.ckpt", tmp_path / "DOVER.pth"
    torch.save(VQA().state_dict(), vqa_file)
    torch.save(DOVER().state_dict(), dover_file)
    critics = load_vqa(vqa_file), build_dover(dover_file, **CHEAP_DOVER)
    enhanced = identity_outputs(data_root, synthetic_mp4s, tmp_path / "enhanced")
    out = tmp_path / "scored"
    out.mkdir()
    (out / RANDOM_CRITICS_ZIP).write_bytes(b"an earlier scoring with random critics")
    report = score_outputs(enhanced, data_root, out, *critics, progress=False)
    assert report.ok and report.results is not None
    check_run_submission(out, supervised_rows=1, unsupervised_rows=1, zip_name=UPLOAD_ZIP)
    score = json.loads((out / "score.json").read_text())
    assert score["critics"] == "given" and "random" not in score["note"]
    assert score["critic_weights"]["vqa"].startswith("VQA.ckpt (sha256 ")
    assert score["critic_weights"]["dover"].startswith("DOVER.pth (sha256 ")
    assert report.results.format_score().splitlines()[-1] == f"score  {score['score']:.4f}"
