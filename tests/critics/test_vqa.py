"""The Siamese VQA critic: exact state-dict layout, official formats, ranges, gradients."""

from __future__ import annotations

import warnings

import pytest
import torch
from fixture_files import VQA_KEYS
from torch import nn

from vqe.conventions import to_vqa
from vqe.critics import VQA, load_vqa
from vqe.critics.frozen import CriticHandle, clear_critic_cache, is_frozen
from vqe.critics.vqa import (
    DECREASING_AUX_INDEX,
    MIN_SIDE,
    NUM_AUX_SCORES,
    higher_is_better,
)

FIXTURE = VQA_KEYS

SIZE = 32  # smallest convenient frame side (the VQA needs MIN_SIDE = 16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convolutions run ~10× slower with two threads on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_cache():
    clear_critic_cache()
    yield
    clear_critic_cache()


def read_fixture() -> list[tuple[str, tuple[int, ...], str]]:
    rows = []
    for line in FIXTURE.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("key\t"):
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d)
        rows.append((key, dims, dtype))
    return rows


def trained_looking_vqa(seed: int = 7) -> VQA:
    """A VQA with non-default weights *and* BatchNorm statistics, so loading them matters."""
    generator = torch.Generator().manual_seed(seed)
    model = VQA()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    return model


def frame_pair(batch: int = 2) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(3)
    frames1 = torch.rand(batch, 3, SIZE, SIZE, generator=generator)
    frames2 = torch.rand(batch, 3, SIZE, SIZE, generator=generator)
    dover1 = torch.rand(batch, generator=generator)
    dover2 = torch.rand(batch, 1, generator=generator)
    return frames1, frames2, dover1, dover2


# --------------------------------------------------------------------------- layout


def test_state_dict_matches_the_official_keys_shapes_and_dtypes_exactly():
    expected = read_fixture()
    actual = [
        (key, tuple(value.shape), str(value.dtype).removeprefix("torch."))
        for key, value in VQA().state_dict().items()
    ]
    assert len(expected) == 205
    assert actual == expected


def test_every_batchnorm_uses_eps_1e_3_encoder_uses_relu6_and_heads_relu():
    # Facts of the starter's model_vqa.py / operations.py: ReLU6 in the encoder (also as the
    # squeeze-excite scale), one plain ReLU between the head layers.
    model = VQA()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2 * 13 + 5 and all(norm.eps == 1e-3 for norm in norms)
    encoder_activations = {type(m) for m in model._encoder.modules() if not m._modules}
    assert nn.ReLU not in encoder_activations and nn.ReLU6 in encoder_activations
    for head in (model.main_head, model.aux_head):
        activations = [m for m in head if not isinstance(m, (nn.Linear, nn.Dropout))]
        assert activations and all(type(m) is nn.ReLU for m in activations)
    assert sum(isinstance(m, nn.ReLU6) for m in model.modules()) == 2 * 13 + 2 * 5


# --------------------------------------------------------------------------- official formats


@pytest.mark.parametrize("layout", ["lightning", "plain"])
def test_weights_saved_in_each_official_format_reload_to_identical_outputs(tmp_path, layout):
    original = trained_looking_vqa().eval()
    path = tmp_path / "VQA.ckpt"
    weights = original.state_dict()
    if layout == "lightning":
        torch.save(
            {
                "epoch": 11,
                "global_step": 5000,
                "pytorch-lightning_version": "2.1.0",
                "state_dict": {f"_model.{key}": value for key, value in weights.items()},
                "hyper_parameters": {"lr": 1e-4, "arch": "UnetLite"},
            },
            path,
        )
    else:
        torch.save(weights, path)

    loaded = load_vqa(path)
    assert is_frozen(loaded)
    inputs = frame_pair()
    # The loaded critic encodes through its folded BatchNorms; so does the original, folded.
    original.fold_batchnorms()
    with torch.no_grad():
        expected = original.compare(*inputs)
        actual = loaded.compare(*inputs)
    for want, got in zip(expected, actual):
        assert torch.equal(want, got)
    assert load_vqa(path) is loaded  # loaded once per process


# --------------------------------------------------------------------------- folded BatchNorms


def assert_relatively_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """Max difference within ``rtol`` of the largest magnitude (features can be tiny)."""
    scale = expected.abs().max().item()
    assert scale > 0
    assert (actual - expected).abs().max().item() <= rtol * scale


def test_folded_encoder_equals_the_reference_in_value_and_gradient():
    critic = trained_looking_vqa().eval()
    frames = torch.randn(2, 3, 48, 80)
    reference_input = frames.clone().requires_grad_(True)
    reference = critic.encode_reference(reference_input)
    reference.square().sum().backward()
    for channels_last in (True, False):
        critic.fold_batchnorms(channels_last)
        folded_input = frames.clone().requires_grad_(True)
        folded = critic.encode(folded_input)
        folded.square().sum().backward()
        assert_relatively_close(folded, reference, 1e-5)
        assert reference_input.grad is not None and folded_input.grad is not None
        assert_relatively_close(folded_input.grad, reference_input.grad, 1e-5)


def test_fused_bf16_convolutions_match_the_autocast_path(monkeypatch: pytest.MonkeyPatch):
    """Under CPU bf16 autocast the folded convs run fused in bf16 too: the same values and input
    gradient as autocast's own conv + ReLU6, to bf16 precision."""
    import vqe.critics.vqa as vqa_module

    critic = trained_looking_vqa().eval().fold_batchnorms()
    frames = torch.randn(2, 3, 48, 80, generator=torch.Generator().manual_seed(0))
    calls: list[torch.dtype] = []
    fused_forward = vqa_module.FrozenConvReLU6.forward

    def counted(ctx: object, x: torch.Tensor, *rest: object) -> torch.Tensor:
        calls.append(x.dtype)
        return fused_forward(ctx, x, *rest)

    monkeypatch.setattr(vqa_module.FrozenConvReLU6, "forward", staticmethod(counted))

    def encode_and_grad() -> tuple[torch.Tensor, torch.Tensor]:
        inputs = frames.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = critic.encode(inputs)
        features.float().square().sum().backward()
        assert inputs.grad is not None
        return features.float(), inputs.grad

    fused, fused_grad = encode_and_grad()
    assert calls and set(calls) == {torch.bfloat16}  # the fused path ran, in bf16
    monkeypatch.setattr(vqa_module, "_fused_conv_dtype", lambda *args: None)
    plain, plain_grad = encode_and_grad()
    assert_relatively_close(fused, plain, 2e-2)
    assert_relatively_close(fused_grad, plain_grad, 5e-2)


def test_folding_keeps_the_official_state_dict_and_strict_loading():
    critic = trained_looking_vqa().eval()
    keys = list(critic.state_dict())
    critic.fold_batchnorms()
    assert list(critic.state_dict()) == keys  # the fold adds only non-persistent buffers
    other = trained_looking_vqa(seed=1).eval()
    critic.load_state_dict(other.state_dict(), strict=True)  # and refolds the new weights
    frames = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_relatively_close(critic.encode(frames), other.encode_reference(frames), 1e-5)


# --------------------------------------------------------------------------- outputs


def test_outputs_have_the_documented_shapes_and_ranges():
    model = trained_looking_vqa().eval()
    p, aux1, aux2 = model.compare(*frame_pair(batch=3))
    assert p.shape == (3, 1) and aux1.shape == aux2.shape == (3, NUM_AUX_SCORES)
    assert p.min() >= 0 and p.max() <= 1
    assert aux1.abs().max() <= 1 and aux2.abs().max() <= 1


def test_outputs_are_clamped_not_squashed():
    model = VQA().eval()
    with torch.no_grad():
        model.main_head[-1].bias.fill_(5.0)
        model.aux_head[-1].bias.copy_(torch.linspace(-5.0, 5.0, NUM_AUX_SCORES))
    p, aux1, _ = model.compare(*frame_pair())
    assert torch.all(p == 1.0)
    assert torch.all(aux1[:, 0] == -1.0) and torch.all(aux1[:, -1] == 1.0)


def test_frames_are_scored_independently_of_their_batch():
    model = trained_looking_vqa().eval()
    frames1, frames2, dover1, dover2 = frame_pair(batch=2)
    with torch.no_grad():
        batched = model.compare(frames1, frames2, dover1, dover2)
        single = model.compare(frames1[1:], frames2[1:], dover1[1:], dover2[1:])
    for whole, part in zip(batched, single):
        torch.testing.assert_close(whole[1:], part)


def test_adapter_converts_internal_frames_to_bgr_v_minus_128_over_128():
    model = VQA().eval()
    seen: list[tuple[torch.Tensor, ...]] = []
    model.register_forward_pre_hook(lambda _module, args: seen.append(args))
    red = torch.zeros(1, 3, SIZE, SIZE)
    red[:, 0] = 1.0  # pure red in internal RGB [0, 1]
    grey = torch.full((1, 3, SIZE, SIZE), 0.5)
    dover1, dover2 = torch.tensor([0.3]), torch.tensor([0.6])
    model.compare(red, grey, dover1, dover2)

    x1, x2, d1, d2 = seen[0]
    # BGR order: red lands in the last channel, at (255 - 128) / 128.
    assert torch.equal(x1[0, :, 0, 0], torch.tensor([-1.0, -1.0, 127.0 / 128.0]))
    torch.testing.assert_close(x2, torch.full_like(grey, (127.5 - 128.0) / 128.0))
    assert torch.equal(x1, to_vqa(red))
    assert d1 is dover1 and d2 is dover2


def test_higher_is_better_flips_only_a4():
    p = torch.tensor([[0.2]])
    aux = torch.linspace(-0.5, 0.5, NUM_AUX_SCORES).unsqueeze(0)
    oriented = higher_is_better(p, aux)
    assert oriented.shape == (1, 12)
    assert oriented[0, 0] == p[0, 0]
    assert oriented[0, 1 + DECREASING_AUX_INDEX] == 1.0 - aux[0, DECREASING_AUX_INDEX]
    others = [i for i in range(NUM_AUX_SCORES) if i != DECREASING_AUX_INDEX]
    assert torch.equal(oriented[0, [1 + i for i in others]], aux[0, others])


@pytest.mark.parametrize(
    ("shape1", "shape2", "dover_count", "match"),
    [
        ((1, 4, SIZE, SIZE), (1, 3, SIZE, SIZE), 1, "x1 must be N×3×H×W"),
        ((1, 3, SIZE, 8), (1, 3, SIZE, 8), 1, f"at least {MIN_SIDE}"),
        ((2, 3, SIZE, SIZE), (1, 3, SIZE, SIZE), 2, "pair them 1:1"),
        ((2, 3, SIZE, SIZE), (2, 3, SIZE, SIZE), 3, r"d1 must hold"),
    ],
)
def test_bad_inputs_get_clear_errors(shape1, shape2, dover_count, match):
    frames1, frames2 = torch.rand(shape1), torch.rand(shape2)
    with pytest.raises(ValueError, match=match):
        VQA().eval()(frames1, frames2, torch.rand(dover_count), torch.rand(shape2[0]))


# --------------------------------------------------------------------------- training use


def test_vqa_loss_gradient_reaches_the_enhanced_frame_and_the_enhancer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        critic = CriticHandle(load_vqa(None, allow_random=True))
    enhancer = nn.Conv2d(3, 3, kernel_size=3, padding=1)  # stand-in for the VQE model
    frames, _, dover_source, dover_enhanced = frame_pair()
    enhanced = (frames + enhancer(frames)).clamp(0.0, 1.0)
    enhanced.retain_grad()

    p, aux_enhanced, _ = critic.on(enhanced).compare(enhanced, frames, dover_enhanced, dover_source)
    scores = higher_is_better(p, aux_enhanced)
    loss = (scores - 1.0).square().mean()
    loss.backward()

    assert enhanced.grad is not None and enhanced.grad.abs().sum() > 0
    for parameter in enhancer.parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in critic.module.parameters())
    assert not critic.module.training


def test_loaded_critic_has_no_trainable_parameters_and_ignores_train():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        critic = load_vqa(None, allow_random=True)
    parent = nn.ModuleDict({"vqa": critic, "enhancer": nn.Conv2d(3, 3, 1)})
    parent.train()
    assert not any(module.training for module in critic.modules())
    assert sum(p.numel() for p in critic.parameters() if p.requires_grad) == 0
