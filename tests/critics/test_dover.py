"""DOVER critic: state-dict layout, strict loading, views, gating, fusion, freezing, gradients.

The full network (56 M parameters) is built a few times only (module-scoped fixtures); scoring
uses 2-frame clips and one technical clip — cheaper than the official 32 frames × 3 clips but
through the same code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from fixture_files import DOVER_KEYS
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from vqe.conventions import DOVER_MEAN, DOVER_STD, UINT8_MAX, normalise_dover, to_dover
from vqe.critics.dover import (
    DOVER,
    DoverCritic,
    DoverSettings,
    build_dover,
    fuse_branch_scores,
    load_dover,
)
from vqe.critics.dover.model import random_weights_digest
from vqe.critics.dover.swin3d import (
    WindowAttention3D,
    fragment_gate,
    relative_position_index,
    shift_mask,
)
from vqe.critics.dover.views import (
    FRAGMENT_GRID,
    FRAGMENT_SIZE,
    VIEW_SIZE,
    aesthetic_view,
    dover_pixels,
    image_views,
    sample_fragment_origins,
    technical_view,
)
from vqe.critics.frozen import CriticHandle, is_frozen
from vqe.critics.weights import CriticWeightsMissingError, WeightsMismatchError

REPO = Path(__file__).resolve().parents[2]
FIXTURE = DOVER_KEYS
CONFIG = REPO / "configs" / "model_dover" / "default.yaml"
#: Cheap scoring: 2 identical frames, one technical mosaic.
CHEAP = DoverSettings(num_frames=2, num_technical_clips=1)
CPU = torch.device("cpu")


# Most tests use the seeded random critic, which warns (by design) on every load.
pytestmark = pytest.mark.filterwarnings("ignore:DOVER.*RANDOM weights:RuntimeWarning")


def read_fixture() -> list[tuple[str, tuple[int, ...], str]]:
    rows = []
    for line in FIXTURE.read_text().splitlines():
        if line.startswith(("#", "key\t")):
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d)
        rows.append((key, dims, dtype))
    return rows


@pytest.fixture(scope="module")
def random_dover() -> DOVER:
    return load_dover(None, allow_random=True)


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DOVER]:
    """Weights in the official format (a plain state dict saved with torch.save), and the
    module they were made in."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = DOVER().eval()
        for name, parameter in model.named_parameters():
            if name.endswith("position_bias_table"):
                nn.init.normal_(parameter, std=0.05)
    path = tmp_path_factory.mktemp("weights") / "DOVER.pth"
    torch.save(model.state_dict(), path)
    return path, model


def small_views(
    clips: int = 1, frames: int = 2, size: int = 128
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    shape = (clips, 3, frames, size, size)
    return {
        "technical": torch.randn(shape, generator=generator),
        "aesthetic": torch.randn(shape, generator=generator),
    }


def test_state_dict_matches_fixture_exactly(random_dover: DOVER) -> None:
    expected = read_fixture()
    assert len(expected) == 381
    state_dict = random_dover.state_dict()
    assert list(state_dict) == [key for key, _, _ in expected]
    for key, shape, dtype in expected:
        tensor = state_dict[key]
        assert tuple(tensor.shape) == shape, key
        assert str(tensor.dtype).removeprefix("torch.") == dtype, key


def test_parameter_count_is_the_fixtures(random_dover: DOVER) -> None:
    fixture_count = sum(
        math.prod(shape) for key, shape, dtype in read_fixture() if dtype == "float32"
    )
    model_count = sum(p.numel() for p in random_dover.parameters())
    assert model_count == fixture_count
    assert 56.1e6 < model_count < 56.3e6


def test_relative_position_index_is_persistent_and_centred() -> None:
    window = (8, 7, 7)
    index = relative_position_index(window)
    rows = (2 * 8 - 1) * (2 * 7 - 1) * (2 * 7 - 1)
    assert index.shape == (392, 392)
    assert torch.all(index.diagonal() == (rows - 1) // 2)  # zero offset: the centre row
    assert torch.all(index + index.T == rows - 1)  # opposite offsets mirror around it
    assert index.min() == 0 and index.max() == rows - 1
    attention = WindowAttention3D(96, 3, window, fragment_bias=True)
    assert "relative_position_index" in attention.state_dict()


def test_strict_load_gives_identical_outputs(
    saved_weights, random_dover: DOVER
) -> None:
    path, reference = saved_weights
    loaded = load_dover(path)
    assert loaded.weights_digest != random_dover.weights_digest
    for key, tensor in reference.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    views = small_views()
    with torch.no_grad():
        expected = reference(views)
        got = loaded(views)
    assert [tuple(m.shape) for m in got] == [(1, 1, 1, 4, 4), (1, 1, 1, 4, 4)]
    for a, b in zip(expected, got):
        assert torch.equal(a, b)
    assert not torch.equal(got[0], random_dover(views)[0])  # the weights matter


def test_load_is_cached_per_process(saved_weights) -> None:
    path, _ = saved_weights
    assert load_dover(path) is load_dover(str(path))


def test_tampered_checkpoint_names_the_bad_keys(
    random_dover: DOVER, tmp_path: Path
) -> None:
    # Every entry in the official shape and dtype, as zero-stride views so the file stays small.
    tampered = {
        key: torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)
        for key, tensor in random_dover.state_dict().items()
    }
    del tampered["technical_head.fc_last.bias"]
    tampered["aesthetic_head.extra.weight"] = torch.zeros(1)
    key = "technical_backbone.layers.0.blocks.0.attn.fragment_position_bias_table"
    tampered[key] = torch.zeros(2535, 4)
    path = tmp_path / "DOVER.pth"
    torch.save(tampered, path)
    with pytest.raises(WeightsMismatchError) as error:
        load_dover(path)
    message = str(error.value)
    assert str(path) in message
    assert "technical_head.fc_last.bias" in message
    assert "aesthetic_head.extra.weight" in message
    assert key in message and "(2535, 4)" in message


def test_missing_weights_say_where_to_get_them(tmp_path: Path) -> None:
    for path in (None, tmp_path / "nowhere" / "DOVER.pth"):
        with pytest.raises(CriticWeightsMissingError) as error:
            load_dover(path)
        message = str(error.value)
        assert "DOVER.pth" in message and "github.com" in message
        assert (
            "model_dover.weights" in message
            and "model_dover.allow_random_critics" in message
        )


def test_random_critic_warns_loudly_and_is_keyed() -> None:
    with pytest.warns(RuntimeWarning, match="MEANINGLESS"):
        critic = load_dover(None, allow_random=True)
    assert critic.weights_digest == random_weights_digest()
    assert critic.weights_digest.startswith("random-")


def test_critic_is_frozen_forever(random_dover: DOVER) -> None:
    assert is_frozen(random_dover)
    assert not any(p.requires_grad for p in random_dover.parameters())
    owner = nn.Module()
    owner.dover = build_dover(allow_random_critics=True)
    owner.train()
    assert not random_dover.training and not owner.dover.training
    assert not any(m.training for m in random_dover.modules())
    handle_owner = nn.Module()
    handle_owner.dover = CriticHandle(owner.dover)
    assert (
        list(handle_owner.state_dict()) == []
    )  # a held critic is not saved with its owner


def test_forward_rejects_bad_views(random_dover: DOVER) -> None:
    views = small_views()
    with pytest.raises(ValueError, match="exactly the keys"):
        random_dover({"technical": views["technical"]})
    with pytest.raises(ValueError, match="K×3×T×H×W"):
        random_dover(
            {"technical": views["technical"][0], "aesthetic": views["aesthetic"]}
        )


def test_bad_frames_and_settings_get_clear_errors(random_dover: DOVER) -> None:
    with pytest.raises(ValueError, match="N×3×H×W"):
        random_dover.score(torch.rand(3, 64, 64), CHEAP)
    with pytest.raises(ValueError, match="floating point"):
        random_dover.score(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), CHEAP)
    with pytest.raises(ValueError, match="float64 on cpu but the critic is"):
        random_dover.score(torch.rand(1, 3, 64, 64, dtype=torch.float64), CHEAP)
    with pytest.raises(ValueError, match="even integer"):
        DoverSettings(num_frames=3)
    with pytest.raises(ValueError, match="num_technical_clips"):
        DoverSettings(num_technical_clips=0)


# --------------------------------------------------------------------------- views


def test_views_follow_the_dover_convention() -> None:
    # One saturated colour per channel: view channel c must be (255·v − mean[c]) / std[c] with
    # v the c-th channel in BGR order — the official pipeline hands DOVER OpenCV frames.
    frames = torch.zeros(2, 3, 240, 320)
    frames[0, 0] = 1.0  # pure red: last in BGR order
    frames[1] = 0.5  # 127.5 is truncated to level 127, as the starter's uint8 cast does
    views = image_views(frames, num_frames=2, num_technical_clips=2)
    assert views["technical"].shape == (4, 3, 2, VIEW_SIZE, VIEW_SIZE)
    assert views["aesthetic"].shape == (2, 3, 2, VIEW_SIZE, VIEW_SIZE)
    for name, clips_per_frame in (("technical", 2), ("aesthetic", 1)):
        view = views[name]
        for frame_index in range(2):
            for channel in range(3):
                value = float(int(frames[frame_index, 2 - channel, 0, 0].item() * UINT8_MAX))
                expected = (value - DOVER_MEAN[channel]) / DOVER_STD[channel]
                clip = view[
                    frame_index * clips_per_frame : (frame_index + 1) * clips_per_frame
                ]
                torch.testing.assert_close(
                    clip[:, channel], torch.full_like(clip[:, channel], expected)
                )


def test_clip_is_identical_frames() -> None:
    views = image_views(torch.rand(1, 3, 230, 230), num_frames=6, num_technical_clips=1)
    for view in views.values():
        assert torch.equal(view[:, :, 0], view[:, :, 5])


def test_fragments_are_crops_inside_their_cells() -> None:
    height, width = 720, 1280
    generator = torch.Generator().manual_seed(3)
    rows, cols = sample_fragment_origins(height, width, 2, 3, generator=generator)
    assert rows.shape == cols.shape == (6, FRAGMENT_GRID, FRAGMENT_GRID)
    row_step, col_step = height // FRAGMENT_GRID, width // FRAGMENT_GRID
    cells = torch.arange(FRAGMENT_GRID)
    row_offsets = rows - (cells * row_step)[None, :, None]
    col_offsets = cols - (cells * col_step)[None, None, :]
    assert row_offsets.min() >= 0 and row_offsets.max() < row_step - FRAGMENT_SIZE
    assert col_offsets.min() >= 0 and col_offsets.max() < col_step - FRAGMENT_SIZE
    assert row_offsets.unique().numel() > 10  # offsets really vary

    frames = torch.rand(1, 3, height, width)
    generator = torch.Generator().manual_seed(11)
    mosaic = technical_view(frames, num_clips=2, generator=generator)
    rows, cols = sample_fragment_origins(
        height, width, 1, 2, generator=torch.Generator().manual_seed(11)
    )
    normalised = normalise_dover(dover_pixels(frames))  # BGR, truncated to 8-bit levels
    for clip, i, j in ((0, 0, 0), (1, 3, 6), (1, 6, 2)):
        top, left = rows[clip, i, j].item(), cols[clip, i, j].item()
        expected = normalised[
            0, :, top : top + FRAGMENT_SIZE, left : left + FRAGMENT_SIZE
        ]
        got = mosaic[
            clip,
            :,
            i * FRAGMENT_SIZE : (i + 1) * FRAGMENT_SIZE,
            j * FRAGMENT_SIZE : (j + 1) * FRAGMENT_SIZE,
        ]
        assert torch.equal(got, expected)


def test_fragment_offsets_are_seedable_and_deterministic_by_default() -> None:
    frames = torch.rand(3, 3, 400, 500)
    default_a = technical_view(frames, num_clips=3)
    default_b = technical_view(frames[1:2], num_clips=3)
    # Without a generator a frame's mosaics do not depend on the call or on the batch.
    assert torch.equal(default_a[3:6], default_b)
    seeded = [
        technical_view(frames, 3, generator=torch.Generator().manual_seed(seed))
        for seed in (5, 5, 6)
    ]
    assert torch.equal(seeded[0], seeded[1])
    assert not torch.equal(seeded[0], seeded[2])
    assert not torch.equal(technical_view(frames, 3, seed=1), default_a)


def test_small_frames_are_upsampled_not_cropped_out() -> None:
    frames = torch.rand(1, 3, 90, 160)
    view = technical_view(frames, num_clips=1)
    assert view.shape == (1, 3, VIEW_SIZE, VIEW_SIZE)
    low, high = to_dover(torch.zeros(1, 3, 1, 1)), to_dover(torch.ones(1, 3, 1, 1))
    assert torch.all(view >= low.view(1, 3, 1, 1) - 1e-5)
    assert torch.all(view <= high.view(1, 3, 1, 1) + 1e-5)
    aesthetic = aesthetic_view(frames)
    assert aesthetic.shape == (1, 3, VIEW_SIZE, VIEW_SIZE)


def test_views_follow_device_and_dtype() -> None:
    frames = torch.rand(1, 3, 230, 250, dtype=torch.float64)
    views = image_views(frames, num_frames=2, num_technical_clips=1)
    assert all(view.dtype == torch.float64 for view in views.values())


# --------------------------------------------------------------------------- fragment gate


def test_fragment_gate_is_the_fragment_distance() -> None:
    # Stage 0 of a 224×224 view: 56×56 tokens, 8×8 tokens per 32×32 fragment, 7×7 windows.
    gate = fragment_gate((1, 56, 56), (1, 7, 7), (0, 0, 0), CPU, torch.float32)
    assert gate.shape == (64, 49, 49)
    assert torch.all(gate[0] == 0)  # tokens 0–6 × 0–6 all lie in fragment (0, 0)
    # Window (1, 0) covers token rows 7–13: row 7 is in fragment row 0, rows 8–13 in row 1.
    window = gate[8]
    assert window[0, 0] == 0  # (7, 0) with itself
    assert window[0, 7] == 1  # (7, 0) and (8, 0): neighbouring fragments
    assert window[7, 48] == 0  # (8, 0) and (13, 6): both in fragment (1, 0)
    # Window (1, 1) spans fragment rows 0–1 and columns 0–1: diagonal neighbours are 2 apart.
    assert gate[9][0, 48] == 2  # (7, 7) and (13, 13)


def test_shift_mask_separates_wrapped_tokens() -> None:
    mask = shift_mask((1, 14, 14), (1, 7, 7), (0, 3, 3), CPU, torch.float32)
    assert mask.shape == (4, 49, 49)
    assert torch.all(mask[0] == 0)  # the top-left window holds no wrapped tokens
    last = mask[3]  # bottom-right window: rows/cols 7–10 original, 11–13 wrapped around

    def token(row: int, col: int) -> int:
        return row * 7 + col

    assert last[token(0, 0), token(3, 3)] == 0
    assert last[token(0, 0), token(4, 0)] < -50  # across the row seam
    assert last[token(0, 0), token(0, 4)] < -50  # across the column seam
    assert last[token(4, 4), token(6, 6)] == 0  # both wrapped in both axes
    # The gate of a shifted stage rolls with the tokens (the wrapped fragments are far apart).
    gate = fragment_gate((1, 56, 56), (1, 7, 7), (0, 3, 3), CPU, torch.float32)
    assert gate[63].max() == 12


def test_position_bias_mixes_tables_through_the_gate() -> None:
    attention = WindowAttention3D(96, 3, (8, 7, 7), fragment_bias=True)
    with torch.no_grad():
        attention.relative_position_bias_table.fill_(2.0)
        attention.fragment_position_bias_table.fill_(-1.0)
    gate = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1).expand(3, 49, 49)
    logits = torch.zeros(1, 3, 3, 49, 49)
    attention.add_position_bias_(logits, (1, 7, 7), gate)
    # Same fragment → fragment table; neighbours → relative table; R·g + F·(1 − g) beyond.
    assert torch.all(logits[0, 0] == -1.0)
    assert torch.all(logits[0, 1] == 2.0)
    assert torch.all(logits[0, 2] == 2.0 * 2 - 1.0 * (1 - 2))

    plain = WindowAttention3D(768, 24, (8, 7, 7), fragment_bias=False)
    with torch.no_grad():
        plain.relative_position_bias_table.fill_(0.5)
    logits = torch.zeros(1, 3, 24, 49, 49)
    plain.add_position_bias_(logits, (1, 7, 7), gate)
    assert torch.all(logits == 0.5)  # no fragment table: the gate does not matter


# --------------------------------------------------------------------------- scores


def test_fusion_is_the_design_formula() -> None:
    technical = torch.tensor([-0.2, 0.0, 0.05])
    aesthetic = torch.tensor([0.3, 0.1, -0.1])
    fused = fuse_branch_scores(technical, aesthetic)
    for t, a, f in zip(technical.tolist(), aesthetic.tolist(), fused.tolist()):
        logit = (a - 0.1107) / 0.07355 * 0.6104 + (t + 0.08285) / 0.03774 * 0.3896
        assert f == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-6)
    # Both branches raise the score.
    assert fuse_branch_scores(technical + 0.01, aesthetic).gt(fused).all()
    assert fuse_branch_scores(technical, aesthetic + 0.01).gt(fused).all()


def test_scores_are_in_range_deterministic_and_gradient_free_by_default(
    random_dover: DOVER,
) -> None:
    frames = torch.rand(2, 3, 120, 160, requires_grad=True)
    branches = random_dover.branch_scores(frames, CHEAP)
    scores = random_dover.score(
        frames, CHEAP
    )  # a second pass, with freshly drawn offsets
    assert branches.shape == (2, 2) and scores.shape == (2,)
    assert torch.isfinite(scores).all() and scores.ge(0).all() and scores.le(1).all()
    # Deterministic: the seeded offsets of the second pass are those of the first.
    assert torch.equal(scores, fuse_branch_scores(branches[:, 0], branches[:, 1]))
    assert not scores.requires_grad
    assert not torch.equal(scores[0], scores[1])  # and the score depends on the frame


def test_differentiable_scores_reach_the_frames(random_dover: DOVER) -> None:
    frames = torch.rand(1, 3, 100, 100, requires_grad=True)
    settings = DoverSettings(num_frames=2, num_technical_clips=1, differentiable=True)
    random_dover.score(frames, settings).sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert all(p.grad is None for p in random_dover.parameters())


def test_config_builds_a_keyed_critic(saved_weights) -> None:
    path, _ = saved_weights
    config = OmegaConf.load(CONFIG)
    official = instantiate(config, weights=str(path))
    assert isinstance(official, DoverCritic)
    assert official.settings == DoverSettings()  # official by default
    assert official.settings.is_official and not official.settings.differentiable
    assert official.network is load_dover(path)
    cheaper = instantiate(
        config, allow_random_critics=True, num_frames=4, differentiable=True
    )
    assert not cheaper.settings.is_official and cheaper.settings.differentiable
    assert cheaper.cache_key == f"{random_weights_digest()}-T4-K3-seed0-bgr-float"
    assert official.cache_key.startswith(official.network.weights_digest)
    assert official.cache_key != cheaper.cache_key
