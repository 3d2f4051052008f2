"""vqe computes the organisers' functions: each fact of the official pipeline, pinned against an
independent rebuild (``tests/official_reference.py``) on weights these tests make in the official
layouts — and each check shown to fail for the reading it rules out."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from config_helpers import compose_config
from official_reference import (
    official_dover_views,
    official_fused_score,
    official_loss,
    official_vqa,
    official_vqa_input,
    official_vqa_weights,
)
from omegaconf import OmegaConf
from torch import Tensor, nn

from vqe import schema
from vqe.conventions import bgr_uint8_to_tensor, to_vqa
from vqe.critics import load_dover, load_vqa
from vqe.critics.dover import OFFICIAL_SETTINGS, DoverSettings
from vqe.critics.dover.views import sample_fragment_origins
from vqe.critics.frozen import clear_critic_cache
from vqe.critics.scorer import CriticScorer, CriticScores
from vqe.data.datasets import FrameDataset
from vqe.data.input_cache import DoverScoreCache
from vqe.data.transforms import Augmentation, EvalTransform, TrainTransform
from vqe.losses import LossInputs, WeightedLoss, build_loss
from vqe.models.enhancer import EnhancerOutput

SPREAD = 30.0  # hidden head units beyond 6 without saturating the outputs (see the weights)


@pytest.fixture(autouse=True)
def _clean_critic_cache():
    clear_critic_cache()
    yield
    clear_critic_cache()


def _random_bgr(height: int, width: int, seed: int) -> np.ndarray:
    """An OpenCV-style frame whose red and blue differ: a warm scene."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.float32)
    image[:, :, 2] = 0.5 * image[:, :, 2] + 120  # red (last in BGR) high
    image[:, :, 0] *= 0.4  # blue low
    return image.astype(np.uint8)


# --------------------------------------------------------------------------- VQA


@pytest.fixture(scope="module")
def vqa_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Tensor]]:
    """``VQA.ckpt`` as the organisers ship it: a Lightning checkpoint, keys under ``_model.``."""
    state = official_vqa_weights(seed=0, head_spread=SPREAD)
    path = tmp_path_factory.mktemp("vqa") / "VQA.ckpt"
    torch.save(
        {
            "epoch": 3,
            "global_step": 1000,
            "pytorch-lightning_version": "1.5.10",
            "state_dict": {f"_model.{key}": value for key, value in state.items()},
        },
        path,
    )
    return path, state


def _vqa_pair() -> tuple[list[np.ndarray], Tensor, Tensor]:
    frames = [_random_bgr(48, 80, seed) for seed in (1, 2, 3, 4)]
    dover = torch.tensor([[0.2], [0.7]])
    return frames, dover[:1].expand(2, 1), dover[1:].expand(2, 1)


def test_vqa_equals_an_independent_rebuild_of_the_official_network(vqa_checkpoint) -> None:
    path, state = vqa_checkpoint
    vqa = load_vqa(path)
    frames, d1, d2 = _vqa_pair()
    official_x1 = torch.cat([official_vqa_input(f) for f in frames[:2]])
    official_x2 = torch.cat([official_vqa_input(f) for f in frames[2:]])
    internal = torch.stack([bgr_uint8_to_tensor(f) for f in frames])
    with torch.no_grad():
        expected = official_vqa(state, official_x1, official_x2, d1, d2)
        through_forward = vqa(official_x1, official_x2, d1, d2)
        through_adapter = vqa.compare(internal[:2], internal[2:], d1, d2)
    for ours in (through_forward, through_adapter):
        for got, want in zip(ours, expected):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # The outputs are inside the clamps, so the comparison is not between saturated values.
    assert 0 < expected[0].min() and expected[0].max() < 1
    assert expected[1].abs().max() < 1


@pytest.mark.parametrize(
    ("gate", "head"), [("hard_sigmoid", "relu"), ("relu6", "relu6"), ("hard_sigmoid", "relu6")]
)
def test_the_vqa_check_rejects_the_other_readings(vqa_checkpoint, gate: str, head: str) -> None:
    # A hard-sigmoid squeeze-excite gate or ReLU6 heads give other outputs on the same weights.
    path, state = vqa_checkpoint
    frames, d1, d2 = _vqa_pair()
    x1 = torch.cat([official_vqa_input(f) for f in frames[:2]])
    x2 = torch.cat([official_vqa_input(f) for f in frames[2:]])
    with torch.no_grad():
        ours = load_vqa(path)(x1, x2, d1, d2)
        wrong = official_vqa(state, x1, x2, d1, d2, gate=gate, head=head)
    largest = max(float((a - b).abs().max()) for a, b in zip(ours, wrong))
    assert largest > 5e-3


# --------------------------------------------------------------------------- DOVER


@pytest.fixture(scope="module")
def dover_network():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the loud random-critic warning
        network = load_dover(None, allow_random=True)
    yield network
    clear_critic_cache()


CHEAP = DoverSettings(num_frames=2, num_technical_clips=1)  # the views' facts at a low cost


def _official_dover_score(network: nn.Module, bgr: np.ndarray, channel_order: str) -> float:
    height, width = bgr.shape[:2]
    rows, cols = sample_fragment_origins(height, width, 1, CHEAP.num_technical_clips)
    views = official_dover_views(bgr, rows, cols, CHEAP.num_frames, channel_order)
    with torch.no_grad():
        return official_fused_score(network(views))


def test_dover_scores_the_bgr_frame_as_the_official_pipeline_does(dover_network) -> None:
    bgr = _random_bgr(240, 320, seed=5)
    frame = bgr_uint8_to_tensor(bgr)[None]
    ours = float(dover_network.score(frame, CHEAP))
    official = _official_dover_score(dover_network, bgr, "bgr")
    published_rgb = _official_dover_score(dover_network, bgr, "rgb")
    assert ours == pytest.approx(official, abs=1e-5)
    assert abs(official - published_rgb) > 1e-3  # the check tells the two orders apart
    rgb_opt_in = DoverSettings(CHEAP.num_frames, CHEAP.num_technical_clips, channel_order="rgb")
    assert float(dover_network.score(frame, rgb_opt_in)) == pytest.approx(published_rgb, abs=1e-5)


def test_dover_truncates_enhanced_frames_to_8_bits_like_the_starter(dover_network) -> None:
    # The starter casts (v·128 + 128) to uint8: level 100.6 becomes 100, not 101.
    bgr = _random_bgr(240, 320, seed=6)
    between_levels = (bgr_uint8_to_tensor(bgr) * 255 + 0.6) / 255
    ours = float(dover_network.score(between_levels[None], CHEAP))
    assert ours == pytest.approx(_official_dover_score(dover_network, bgr, "bgr"), abs=1e-5)


def test_the_default_dover_score_is_the_official_setting(dover_network) -> None:
    assert OFFICIAL_SETTINGS.is_official and OFFICIAL_SETTINGS.differences == []
    assert (OFFICIAL_SETTINGS.num_frames, OFFICIAL_SETTINGS.num_technical_clips) == (32, 3)
    assert OFFICIAL_SETTINGS.channel_order == "bgr" and OFFICIAL_SETTINGS.quantise
    assert dover_network.score.__defaults__ == (OFFICIAL_SETTINGS, None)
    for other in (
        DoverSettings(channel_order="rgb"),
        DoverSettings(differentiable=True),
        DoverSettings(num_frames=4),
    ):
        assert not other.is_official and other.differences
        assert other.tag != OFFICIAL_SETTINGS.tag  # never shares a score cache with it


# --------------------------------------------------------------------------- loss


def _reference_loss() -> WeightedLoss:
    cfg = compose_config("vqe", ["loss=reference", "dataset=official", "dataset.path=/data/vqe"])
    return build_loss(OmegaConf.to_container(cfg.loss, resolve=True))


def _loss_batch(supervised: bool) -> LossInputs:
    generator = torch.Generator().manual_seed(9)
    inputs = torch.rand(2, 3, 16, 16, generator=generator)
    enhanced = torch.rand(2, 3, 16, 16, generator=generator)
    target = torch.rand(2, 3, 16, 16, generator=generator) if supervised else None
    p = torch.rand(2, 1, generator=generator)
    aux = torch.rand(2, 11, generator=generator) * 2 - 1
    critics = CriticScores(p, aux, aux.flip(0), torch.rand(2), torch.rand(2))
    return LossInputs(inputs, EnhancerOutput(enhanced, None, None, None), target, critics)


@pytest.mark.parametrize("supervised", [True, False])
def test_loss_reference_is_the_official_objective(supervised: bool) -> None:
    batch = _loss_batch(supervised)
    ours = _reference_loss()(batch).total
    target = to_vqa(batch.target) if batch.target is not None else None
    assert batch.critics is not None
    official = official_loss(
        to_vqa(batch.output.frames), target, batch.critics.p, batch.critics.aux_enhanced, supervised
    )
    torch.testing.assert_close(ours, official, atol=1e-6, rtol=1e-6)


def test_the_reference_pixel_term_is_not_the_unit_scale_mse() -> None:
    batch = _loss_batch(supervised=True)
    assert batch.target is not None
    terms = _reference_loss()(batch).terms
    unit = torch.nn.functional.mse_loss(batch.output.frames, batch.target)
    assert float(terms["mse"] / unit) == pytest.approx((255 / 128) ** 2, rel=1e-5)  # ≈ 3.97


# --------------------------------------------------------------------------- same view for DOVER


class MeanDover(nn.Module):
    """A DOVER stand-in whose score is the frame mean: any crop or change shows in it."""

    cache_key = "mean-dover"

    def __init__(self) -> None:
        super().__init__()
        self.frames_scored = 0

    def forward(self, frames: Tensor) -> Tensor:
        self.frames_scored += frames.shape[0]
        return frames.mean(dim=(1, 2, 3))


def _index(root: Path) -> tuple[pd.DataFrame, list[Tensor]]:
    import cv2

    rows, frames = [], []
    for number in range(3):
        relative = f"train/unsupervised/video_000{number}/x/frame_0001.png"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        bgr = _random_bgr(40, 56, seed=number)
        cv2.imwrite(str(root / relative), bgr)
        frames.append(bgr_uint8_to_tensor(bgr))
        rows.append(
            {
                schema.IMG_SOURCE: relative,
                schema.IMG_TARGET: "",
                schema.HEIGHT: 40,
                schema.WIDTH: 56,
                schema.SUBSET: "unsupervised",
                schema.VIDEO_ID: f"video_000{number}",
                schema.FRAME_INDEX: 1,
            }
        )
    return pd.DataFrame(rows), frames


def test_dover_of_the_input_is_computed_on_the_view_the_output_gets(tmp_path: Path) -> None:
    index, stored = _index(tmp_path)
    whole = FrameDataset(tmp_path, index, tmp_path / "train.csv", transform=EvalTransform())
    cropped = FrameDataset(
        tmp_path,
        index,
        tmp_path / "train.csv",
        transform=TrainTransform((32, 32), Augmentation(crop_scale=None, hflip_p=0, affine_p=0)),
    )
    jittered = FrameDataset(  # whole frames, colours changed: no longer the stored view
        tmp_path,
        index,
        tmp_path / "train.csv",
        transform=TrainTransform(None, Augmentation(hflip_p=0, affine_p=0, jitter_p=1.0)),
    )
    assert [whole[i]["stored_input"] for i in range(3)] == list(index[schema.IMG_SOURCE])
    assert [cropped[i]["stored_input"] for i in range(3)] == ["", "", ""]
    assert [jittered[i]["stored_input"] for i in range(3)] == ["", "", ""]

    # The data side scores the stored views once (the cache under the data root) and serves
    # the scores in the items; nothing else gets one.
    dover = MeanDover()
    for dataset in (whole, cropped, jittered):
        sources = dataset.stored_view_sources()
        scores = DoverScoreCache(tmp_path, dover, progress=False).get_or_compute(
            sources, dataset.read_input
        )
        dataset.attach_input_scores(dict(zip(sources, scores.tolist())))
    assert dover.frames_scored == 3  # the three whole stored files, once
    assert [whole[i]["dover_input"] for i in range(3)] == pytest.approx(
        [float(frame.mean()) for frame in stored], abs=1e-6
    )
    assert all(math.isnan(data[i]["dover_input"]) for data in (cropped, jittered) for i in range(3))

    scorer = CriticScorer(nn.Identity(), dover, input_dover="auto")  # type: ignore[arg-type]
    crops = torch.stack([cropped[i]["x"] for i in range(3)])
    scores = scorer.input_scores(crops, torch.tensor([cropped[i]["dover_input"] for i in range(3)]))
    torch.testing.assert_close(scores, crops.mean(dim=(1, 2, 3)))  # each crop as it is
    assert float(scores[1]) != pytest.approx(float(stored[1].mean()), abs=1e-4)
    mixed_inputs = torch.stack([whole[0]["x"], jittered[1]["x"], jittered[2]["x"]])
    delivered = torch.tensor([whole[0]["dover_input"], math.nan, math.nan])
    dover.frames_scored = 0
    scores = scorer.input_scores(mixed_inputs, delivered)
    # The stored frame's score is the delivered one; the changed frames are scored as they
    # are, exactly as DOVER(ŷ) of their outputs would be.
    torch.testing.assert_close(scores, mixed_inputs.mean(dim=(1, 2, 3)))
    assert dover.frames_scored == 2
    with pytest.raises(ValueError, match="input_dover=cache.*not stored frames"):
        CriticScorer(nn.Identity(), dover, input_dover="cache").input_scores(  # type: ignore[arg-type]
            mixed_inputs, delivered
        )


def test_cached_vqa_input_features_leave_the_official_scores_unchanged(
    vqa_checkpoint, tmp_path: Path
) -> None:
    """The training and test loops take the VQA's features of stored input frames from the
    data side's cache (``vqa_input``) instead of encoding x every step: the official network's
    outputs stay the same to 1e-5, whichever rows come from the cache."""
    import cv2

    from vqe.critics.vqa import VqaInputEncoder
    from vqe.data.input_cache import FeatureCache

    path, state = vqa_checkpoint
    vqa = load_vqa(path)
    frames, _, _ = _vqa_pair()
    enhanced_bgr, input_bgr = frames[:2], frames[2:]
    sources = [f"train/x/frame_{i:04d}.png" for i in range(2)]
    for relative, frame in zip(sources, input_bgr):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(tmp_path / relative), frame)

    def read(relative: str) -> Tensor:
        return bgr_uint8_to_tensor(cv2.imread(str(tmp_path / relative), cv2.IMREAD_COLOR))

    encoder = VqaInputEncoder(vqa)
    assert encoder.cache_key.startswith("vqa-") and len(encoder.cache_key) > 8
    FeatureCache(tmp_path, encoder, progress=False).get_or_compute(sources, read)
    cached = FeatureCache(tmp_path, encoder, progress=False).get_or_compute(sources, read)
    assert cached.shape == (2, 512)

    enhanced = torch.stack([bgr_uint8_to_tensor(f) for f in enhanced_bgr])
    inputs = torch.stack([read(s) for s in sources])
    dover_input = torch.tensor([0.7, 0.3])
    dover = MeanDover()
    d_enhanced = enhanced.mean(dim=(1, 2, 3))
    with torch.no_grad():
        expected = official_vqa(
            state,
            torch.cat([official_vqa_input(f) for f in enhanced_bgr]),
            torch.cat([official_vqa_input(f) for f in input_bgr]),
            d_enhanced[:, None],
            dover_input[:, None],
        )
        partly = cached.clone()
        partly[1] = math.nan  # e.g. a crop beside a stored frame: encoded on the batch
        for mode, known in (("auto", cached), ("auto", partly), ("online", cached)):
            scorer = CriticScorer(vqa, dover, input_features=mode)  # type: ignore[arg-type]
            scores = scorer(enhanced, inputs, dover_input, exact=True, known_input_features=known)
            for got, want in zip((scores.p, scores.aux_enhanced, scores.aux_input), expected):
                torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # The comparison can fail: the features of other frames (flat grey ones; two noise frames
    # of one distribution have nearly the same mean features) change the official outputs.
    other = encoder(torch.full_like(inputs, 0.5))
    wrong = CriticScorer(vqa, dover)(  # type: ignore[arg-type]
        enhanced, inputs, dover_input, exact=True, known_input_features=other
    )
    assert (wrong.aux_input - expected[2]).abs().max() > 10 * 1e-5  # ten times the tolerance
