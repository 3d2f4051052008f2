"""vqe evaluate: the submission CSVs and tables of a checkpoint, checked frame by frame.

A tiny enhancer is trained for two steps on a few-frame index; critics are RANDOM (with the
cheapest DOVER setting), so the values mean nothing — the test recomputes them independently
and compares.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from index_helpers import TEST_VIDEOS, write_train_and_test
from omegaconf import DictConfig
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from submission_checks import RANDOM_CRITICS_ZIP, check_run_submission

from vqe import schema
from vqe.conventions import bgr_uint8_to_tensor, vqa_scale_rmse
from vqe.metrics.score import score_submission
from vqe.metrics.temporal import WarpingErrorMeter, flicker
from vqe.metrics.video_metrics import TemporalTracker, VideoMetrics
from vqe.models.loading import (
    CheckpointError,
    enhancer_from_checkpoint,
    enhancer_from_preset,
    init_enhancer,
)
from vqe.training.evaluation import evaluate
from vqe.training.train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CHEAP_CRITICS = [
    "dataloader.num_workers=0",
    "dataloader.pin_memory=false",
    "allow_random_critics=true",
    "evaluation.critics.dover.num_frames=2",
    "evaluation.critics.dover.num_technical_clips=1",
]


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    write_train_and_test(root)
    return root


@pytest.fixture(scope="module")
def checkpoint(frames_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train")
    cfg = compose_config(
        "vqe",
        [
            f"paths.output_dir={out}",
            "dataset=official",
            "dataset.val_videos=2",  # the tiny index holds few synthetic videos
            f"dataset.path={frames_root}",
            "debug=fast",  # tiny model, batches of 2, 1 epoch of 2 training steps
            "loss=supervised",
            "dataset.train_query=\"subset in ['synthetic', 'real']\"",
            "dataset.crop_size=[16,16]",
            "test=false",
            *CHEAP_CRITICS,
        ],
    )
    return Path(train(cfg)["last_checkpoint"])


def read_table(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return {row[0]: row[1:] for row in rows}


def frames_of(root: Path, video_id: str, folder: str) -> torch.Tensor:
    paths = sorted((root / "test").glob(f"*/{video_id}/{folder}/*.png"))
    return torch.stack([bgr_uint8_to_tensor(cv2.imread(str(path))) for path in paths])


def test_evaluate_writes_the_official_csvs_of_a_checkpoint(
    tmp_path: Path, frames_root: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # no LPIPS backbone
    out = tmp_path / "evaluation"
    cfg = compose_config(
        "evaluate",
        [f"paths.output_dir={out}", f"ckpt={checkpoint}", "dataset=official"]
        + [f"dataset.path={frames_root}"]
        + ["evaluation.subset=true"]
        + CHEAP_CRITICS,
    )
    results = evaluate(cfg)

    supervised_video, unsupervised_video = (video.video_id for video in TEST_VIDEOS)
    # Exactly the two official files in submission/ and in the zip; nothing else beside them.
    check_run_submission(out, supervised_rows=1, unsupervised_rows=1, zip_name=RANDOM_CRITICS_ZIP)
    assert sorted(path.name for path in (out / "tables").iterdir()) == [
        "quality.csv",
        "temporal.csv",
    ]
    assert results["submission_zip"] == str(out / RANDOM_CRITICS_ZIP)  # CHEAP_CRITICS: random
    assert results["critics"] == "random"
    supervised = read_table(out / "submission" / schema.SUPERVISED_METRICS_CSV)
    unsupervised = read_table(out / "submission" / schema.UNSUPERVISED_METRICS_CSV)
    assert supervised.pop(schema.VIDEO_KEY) == [schema.RMSE]
    assert unsupervised.pop(schema.VIDEO_KEY) == list(schema.SCORE_COLUMNS)
    assert list(supervised) == [supervised_video] and list(unsupervised) == [unsupervised_video]

    enhancer, _ = enhancer_from_checkpoint(checkpoint)
    with torch.no_grad():
        inputs = frames_of(frames_root, supervised_video, "x")
        rmse = vqa_scale_rmse(enhancer(inputs), frames_of(frames_root, supervised_video, "y"))
        expected_rmse = rmse.mean().item()  # mean over frames on the (v − 128)/128 scale
        inputs = frames_of(frames_root, unsupervised_video, "x")
        scorer = instantiate(cfg.evaluation.critics)
        scores = scorer(enhancer(inputs), inputs, exact=True).metric_row().mean(dim=0)
    assert float(supervised[supervised_video][0]) == pytest.approx(expected_rmse, rel=1e-5)
    measured = [float(value) for value in unsupervised[unsupervised_video]]
    assert measured == pytest.approx(scores.tolist(), abs=1e-4)  # m_1 = p, m_2… = a1… (raw)

    report = score_submission(out / "submission", supervised_rows=None, unsupervised_rows=None)
    assert results["score"] == pytest.approx(report.score)
    assert (out / "score.json").is_file()

    # Quality of the supervised video: per-frame scikit-image values, averaged over its frames.
    with torch.no_grad():
        outputs = enhancer(frames_of(frames_root, supervised_video, "x")).clamp(0, 1)
    targets = frames_of(frames_root, supervised_video, "y")
    per_frame = []
    for output, target in zip(outputs, targets):
        a, b = (frame.permute(1, 2, 0).double().numpy() for frame in (output, target))
        per_frame.append(
            [
                peak_signal_noise_ratio(b, a, data_range=1.0),
                structural_similarity(
                    a, b, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                    use_sample_covariance=False,
                ),
            ]
        )  # fmt: skip
    quality = read_table(out / "tables" / "quality.csv")
    # No backbone file: the LPIPS column is left out rather than faked.
    assert quality.pop(schema.VIDEO_KEY) == [schema.SUBSET, "frames", "psnr", "ssim"]
    subset, frames, *values = quality.pop(supervised_video)
    assert not quality and subset == schema.SUBSET_SYNTHETIC and int(frames) == len(targets)
    expected_quality = np.mean(per_frame, axis=0)
    assert [float(value) for value in values] == pytest.approx(expected_quality, rel=1e-4)
    assert results["mean_psnr"] == pytest.approx(expected_quality[0], rel=1e-4)

    # Temporal measures of every video, recomputed from its frames in order.
    temporal = read_table(out / "tables" / "temporal.csv")
    header = [schema.SUBSET, "flicker", "warping_error", "input_warping_error"]
    assert temporal.pop(schema.VIDEO_KEY) == header
    assert set(temporal) == {supervised_video, unsupervised_video}
    for video in temporal:
        inputs = frames_of(frames_root, video, "x")
        with torch.no_grad():
            enhanced = enhancer(inputs)
        meter = WarpingErrorMeter()
        for output, source in zip(enhanced, inputs):
            meter.update(output, source)
        measured = [float(value) for value in temporal[video][1:]]
        expected = [flicker(enhanced, inputs), meter.value(), meter.input_value()]
        assert measured == pytest.approx(expected, rel=1e-4, abs=1e-9), video
        assert all(math.isfinite(value) for value in measured)


def test_evaluate_names_a_missing_checkpoint(tmp_path: Path, frames_root: Path) -> None:
    cfg = compose_config(
        "evaluate",
        [f"paths.output_dir={tmp_path}", f"ckpt={tmp_path / 'none.ckpt'}"] + CHEAP_CRITICS,
    )
    with pytest.raises(FileNotFoundError, match="ckpt="):
        evaluate(cfg)


def test_checkpoints_must_come_from_train_vqe(tmp_path: Path) -> None:
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"enhancer.lut.basis": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="model_vqe config"):
        enhancer_from_checkpoint(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        enhancer_from_checkpoint(path)


def test_init_from_loads_present_stages_strictly_and_refuses_a_dropped_stage(
    checkpoint: Path,
) -> None:
    trained, _ = enhancer_from_checkpoint(checkpoint)
    fresh = enhancer_from_preset("tiny")
    assert init_enhancer(fresh, checkpoint) == ["lut", "unet"]
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="model_vqe.lut is null"):
        init_enhancer(enhancer_from_preset("tiny", ["lut=null"]), checkpoint)
    with pytest.raises(CheckpointError, match="does not match"):
        init_enhancer(enhancer_from_preset("tiny", ["lut.lut_size=5"]), checkpoint)


def test_rank_results_merge_with_each_frame_counted_once() -> None:
    """DDP pads the last batches with repeated frames; the merged means must not count them."""
    rank0, rank1 = VideoMetrics(), VideoMetrics()
    rank0.add_rmse(["synthetic"] * 2, ["video_0001"] * 2, [0, 1], torch.tensor([1.0, 2.0]))
    rank1.add_rmse(["synthetic"] * 2, ["video_0001"] * 2, [2, 0], torch.tensor([6.0, 1.0]))
    scores = torch.arange(24, dtype=torch.float32).view(2, 12)
    rank1.add_scores(["unsupervised"] * 2, ["video_0002"] * 2, [0, 1], scores)
    merged = VideoMetrics.merged([rank0, rank1])
    assert merged.frame_count == 5
    assert merged.supervised_means() == {"video_0001": pytest.approx(3.0)}
    assert merged.unsupervised_means()["video_0002"] == pytest.approx((scores.mean(0)).tolist())
    clash = VideoMetrics()
    clash.add_rmse(["synthetic", "real"], ["video_0001"] * 2, [0, 0], torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="test_query"):
        clash.supervised_means()


def test_temporal_measures_need_frames_in_order() -> None:
    tracker = TemporalTracker()
    frames = torch.rand(4, 3, 16, 16)
    tracker.update(["real"] * 2, ["video_0001"] * 2, [0, 1], frames[:2], frames[:2])
    tracker.update(["real"] * 2, ["video_0001", "video_0002"], [2, 5], frames[2:], frames[2:])
    tracker.update(["real"], ["video_0002"], [3], frames[:1], frames[:1])  # out of order
    values = tracker.values()
    in_order = values[("real", "video_0001")]
    assert in_order["flicker"] == pytest.approx(0.0, abs=1e-9)  # output = input
    assert in_order["warping_error"] == in_order["input_warping_error"]  # output = input
    assert all(math.isnan(value) for value in values[("real", "video_0002")].values())
    assert TemporalTracker(flicker=True, warping=False).measures == ("flicker",)
