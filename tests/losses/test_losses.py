"""Loss terms, their combination and the non-finite check (vqe/losses.py).

LPIPS tests use a RANDOM backbone (no torchvision weights are available offline) or a random
torchvision-format checkpoint written here; they check wiring, not perceptual values.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from omegaconf import OmegaConf

from vqe import losses
from vqe.critics.scorer import CriticScores
from vqe.critics.vqa import DECREASING_AUX_INDEX, higher_is_better, load_vqa
from vqe.losses import (
    CosineColour,
    DoverQuality,
    LabColourDifference,
    LossInputs,
    LossResult,
    LPIPSLoss,
    LPIPSWeightsMissingError,
    LutMonotonicity,
    LutSmoothness,
    LutSparsity,
    NoApplicableLossError,
    NonFiniteLossError,
    SSIMLoss,
    SupervisedL1,
    SupervisedMSE,
    VQAObjective,
    WeightedLoss,
    build_loss,
    build_lpips_network,
    check_finite,
    delta_e76,
    srgb_to_lab,
)
from vqe.models.enhancer import EnhancerOutput
from vqe.models.loading import enhancer_from_preset

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def random_lpips() -> LPIPSLoss:
    """LPIPS with a random backbone — its values mean nothing; the warning says so. Random only
    when no path is given and the default file is absent (a given path must exist)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(losses, "default_backbone_path", lambda net: Path("/nonexistent/alex.pth"))
        with pytest.warns(RuntimeWarning, match="RANDOM alex backbone"):
            return LPIPSLoss(allow_random_backbone=True)


def test_a_given_lpips_backbone_path_that_is_missing_is_refused_even_with_random_allowed() -> None:
    with pytest.raises(LPIPSWeightsMissingError, match="/nonexistent/alexnet.pth"):
        LPIPSLoss(backbone_weights="/nonexistent/alexnet.pth", allow_random_backbone=True)


def critic_scores(p: torch.Tensor, aux: torch.Tensor) -> CriticScores:
    batch = p.shape[0]
    return CriticScores(p, aux, torch.zeros_like(aux), torch.rand(batch), torch.rand(batch))


def frames_output(frames: torch.Tensor) -> EnhancerOutput:
    return EnhancerOutput(frames=frames, lut_frames=None, lut_weights=None, luts=None)


# --------------------------------------------------------------------------- VQA objective


def test_oriented_scores_invert_only_a4() -> None:
    p, aux = torch.rand(3, 1), torch.rand(3, 11) * 2 - 1
    oriented = higher_is_better(p, aux)
    assert oriented.shape == (3, 12)
    column = 1 + DECREASING_AUX_INDEX
    torch.testing.assert_close(oriented[:, column], 1 - aux[:, DECREASING_AUX_INDEX])
    others = [i for i in range(12) if i != column]
    torch.testing.assert_close(oriented[:, others], torch.cat([p, aux], 1)[:, others])


def test_vqa_objective_is_the_mse_of_oriented_scores_to_one_and_perfect_scores_give_zero() -> None:
    p, aux = torch.rand(4, 1), torch.rand(4, 11) * 2 - 1
    term = VQAObjective()
    inputs = LossInputs(torch.rand(4, 3, 8, 8), frames_output(torch.rand(4, 3, 8, 8)))
    inputs.critics = critic_scores(p, aux)
    expected = ((higher_is_better(p, aux) - 1) ** 2).mean()
    torch.testing.assert_close(term(inputs), expected)
    perfect = torch.ones(4, 11)
    perfect[:, DECREASING_AUX_INDEX] = 0.0  # a4 falls with quality: 0 is its best
    inputs.critics = critic_scores(torch.ones(4, 1), perfect)
    assert term(inputs) == 0


def test_vqa_objective_sends_gradients_to_the_enhanced_frames_through_a_random_vqa() -> None:
    vqa = load_vqa(None, allow_random=True)
    frames = torch.rand(2, 3, 32, 32, requires_grad=True)
    inputs = torch.rand(2, 3, 32, 32)
    dover = torch.full((2,), 0.5)
    p, aux_enhanced, aux_input = vqa.compare(frames, inputs, dover, dover)
    scores = CriticScores(p, aux_enhanced, aux_input, dover, dover)
    VQAObjective()(LossInputs(inputs, frames_output(frames), critics=scores)).backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in vqa.parameters())


# --------------------------------------------------------------------------- pixel terms


def test_supervised_terms_match_their_definitions() -> None:
    output, target = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    inputs = LossInputs(torch.rand(2, 3, 5, 5), frames_output(output), target=target)
    torch.testing.assert_close(SupervisedMSE()(inputs), ((output - target) ** 2).mean())
    torch.testing.assert_close(SupervisedL1()(inputs), (output - target).abs().mean())


def test_cosine_colour_ignores_brightness_but_not_hue() -> None:
    target = torch.rand(1, 3, 6, 6) * 0.5 + 0.2
    term = CosineColour()
    darker = LossInputs(target, frames_output(target * 0.5), target=target)
    assert term(darker) < 1e-6
    swapped = LossInputs(target, frames_output(target[:, [2, 0, 1]]), target=target)
    assert term(swapped) > 1e-3


@pytest.mark.parametrize("term", [SSIMLoss(), LabColourDifference()], ids=["ssim", "lab"])
def test_ssim_and_lab_are_zero_for_identical_frames_with_a_gradient(term) -> None:
    target = torch.rand(2, 3, 24, 24)
    same = target.clone().requires_grad_(True)
    value = term(LossInputs(target, frames_output(same), target=target))
    assert value.abs() < 1e-5
    other = (target * 0.7 + 0.1).requires_grad_(True)
    loss = term(LossInputs(target, frames_output(other), target=target))
    loss.backward()
    assert loss > 1e-3 and other.grad is not None and torch.isfinite(other.grad).all()
    assert other.grad.abs().sum() > 0


def test_ssim_matches_torchmetrics_and_sees_a_lifted_black_level() -> None:
    metrics = pytest.importorskip("torchmetrics.image")
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 40, generator=generator)
    output = (target + 0.05 * torch.randn(2, 3, 32, 40, generator=generator)).clamp(0, 1)
    reference = metrics.StructuralSimilarityIndexMeasure(data_range=1.0)(output, target)
    ours = 1.0 - SSIMLoss()(LossInputs(target, frames_output(output), target=target))
    assert abs(float(ours) - float(reference)) < 1e-3
    hazy = 0.15 + 0.85 * target  # blacks lifted into haze: a small L1, a clear SSIM loss
    assert SSIMLoss()(LossInputs(target, frames_output(hazy), target=target)) > 0.01


def test_lab_of_known_colours_and_a_known_difference() -> None:
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    lab = srgb_to_lab(colours.view(3, 3, 1, 1)).view(3, 3)
    expected = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20]])
    torch.testing.assert_close(lab, expected, atol=0.02, rtol=0)
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    torch.testing.assert_close(delta_e76(white, black), torch.full((1, 2, 2), 100.0), atol=0.01,
                               rtol=0)


def test_lab_difference_of_a_colour_cast_matches_skimage() -> None:
    color = pytest.importorskip("skimage.color")
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 8, 8, generator=generator)
    gains = torch.tensor([1.2, 1.0, 0.8]).view(1, 3, 1, 1)  # a warm white-balance cast
    cast = (target * gains).clamp(0, 1)
    as_image = lambda frames: frames[0].permute(1, 2, 0).double().numpy()  # noqa: E731
    expected = color.deltaE_cie76(color.rgb2lab(as_image(cast)), color.rgb2lab(as_image(target)))
    term = LabColourDifference()(LossInputs(target, frames_output(cast), target=target))
    assert abs(float(term) - float(expected.mean())) < 0.02
    assert float(term) > 1.0  # a visible cast


def test_lut_terms_score_the_untrained_identity_lut_and_skip_enhancers_without_one() -> None:
    enhancer = enhancer_from_preset("tiny")
    frames = torch.rand(2, 3, 16, 16)
    output = enhancer.forward_with_weights(frames)
    inputs = LossInputs(frames, output)
    size = enhancer.lut.lut_size
    # The untrained LUT is the identity up to its ~1e-5 start in the extra bases' weights.
    torch.testing.assert_close(
        LutSmoothness()(inputs), torch.tensor(1.0 / (size - 1) ** 2), rtol=1e-3, atol=1e-6
    )
    assert LutMonotonicity()(inputs) < 1e-6
    torch.testing.assert_close(
        LutSparsity()(inputs), torch.tensor(1.0), rtol=0, atol=1e-3
    )  # weights ≈ (1, 0, 0)
    no_lut = LossInputs(frames, frames_output(frames))
    assert not any(term.applies_to(no_lut) for term in (LutSmoothness(), LutSparsity()))


def test_dover_term_refuses_to_train_without_a_differentiable_dover() -> None:
    frames = torch.rand(2, 3, 8, 8, requires_grad=True)
    scores = critic_scores(torch.rand(2, 1), torch.rand(2, 11))
    inputs = LossInputs(frames, frames_output(frames), critics=scores)
    with pytest.raises(RuntimeError, match="model_dover.differentiable=true"):
        DoverQuality()(inputs)
    scores.dover_enhanced = frames.mean(dim=(1, 2, 3))  # stands in for a differentiable DOVER
    DoverQuality()(inputs).backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0


# --------------------------------------------------------------------------- LPIPS


def test_lpips_with_a_random_backbone_is_zero_for_equal_frames_and_differentiable() -> None:
    term = random_lpips()
    target = torch.rand(2, 3, 32, 32)
    same = LossInputs(target, frames_output(target.clone()), target=target)
    assert term(same).abs() < 1e-6
    output = torch.rand(2, 3, 32, 32, requires_grad=True)
    value = term(LossInputs(target, frames_output(output), target=target))
    value.backward()
    assert value > 0 and output.grad is not None and output.grad.abs().sum() > 0
    assert not list(term.parameters()), "the LPIPS network must stay outside the module tree"


def test_lpips_without_backbone_weights_names_the_file_and_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "alexnet.pth"
    with pytest.raises(LPIPSWeightsMissingError, match="backbone_weights") as error:
        LPIPSLoss(backbone_weights=missing)
    assert str(missing) in str(error.value) and "alexnet-owt-7be5be79.pth" in str(error.value)


def test_lpips_loads_a_torchvision_backbone_file_without_any_download(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()  # random, torchvision format
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no random-backbone fallback
        network = build_lpips_network("alex", backbone_weights=path)
    torch.testing.assert_close(network.net.slice1[0].weight, state["features.0.weight"])
    torch.testing.assert_close(getattr(network.net.slice5, "10").bias, state["features.10.bias"])
    torch.save({"classifier.1.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a torchvision classification checkpoint"):
        build_lpips_network("alex", backbone_weights=path)


# --------------------------------------------------------------------------- combination


def test_weighted_loss_sums_weighted_terms_and_skips_supervised_ones_without_targets() -> None:
    loss = WeightedLoss(
        {"mse": SupervisedMSE(), "l1": SupervisedL1(), "vqa": VQAObjective()},
        {"mse": 2.0, "l1": 0.5, "vqa": 3.0},
    )
    assert loss.needs_critics
    output, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    scores = critic_scores(torch.rand(2, 1), torch.rand(2, 11))
    result = loss(LossInputs(output, frames_output(output), target, scores))
    assert set(result.terms) == {"mse", "l1", "vqa"}
    expected = 2.0 * result.terms["mse"] + 0.5 * result.terms["l1"] + 3.0 * result.terms["vqa"]
    torch.testing.assert_close(result.total, expected)
    unsupervised = loss(LossInputs(output, frames_output(output), None, scores))
    assert set(unsupervised.terms) == {"vqa"}
    with pytest.raises(NoApplicableLossError, match="train_query"):
        loss(LossInputs(output, frames_output(output)))


def test_build_loss_builds_only_weighted_terms_from_the_config() -> None:
    base = OmegaConf.load(CONFIG_DIR / "loss" / "base.yaml")
    assert set(base.weights) == set(base.terms) and not any(base.weights.values())
    # LPIPS has weight 0: its missing weights file must not matter.
    base.terms.lpips.backbone_weights = "/nonexistent/alexnet.pth"
    base.terms.lpips.allow_random_backbone = False
    base.weights.mse = 1.0
    base.weights.colour = 0.25
    loss = build_loss(base)
    assert set(loss.terms) == {"mse", "colour"} and loss.weights == {"mse": 1.0, "colour": 0.25}
    assert not loss.needs_critics
    base.weights.unknown = 1.0
    with pytest.raises(ValueError, match="unknown"):
        build_loss(base)


def test_non_finite_loss_names_the_step_and_every_term() -> None:
    finite = LossResult(torch.tensor(1.0), {"mse": torch.tensor(1.0)})
    check_finite(finite, step=3)
    broken = LossResult(
        torch.tensor(float("nan")), {"mse": torch.tensor(0.5), "vqa": torch.tensor(float("inf"))}
    )
    with pytest.raises(NonFiniteLossError, match="global step 7") as error:
        check_finite(broken, step=7)
    assert "mse=0.5" in str(error.value) and "vqa=inf" in str(error.value)


@pytest.mark.parametrize(
    "name", ["mse", "l1", "colour", "lpips", "smoothness", "sparsity", "ssim", "lab"]
)
def test_every_term_sends_gradients_to_the_enhancer(name: str) -> None:
    terms = {
        "ssim": SSIMLoss,
        "lab": LabColourDifference,
        "mse": SupervisedMSE,
        "l1": SupervisedL1,
        "colour": CosineColour,
        "lpips": random_lpips,
        "smoothness": LutSmoothness,
        "sparsity": LutSparsity,
    }
    term = terms[name]()
    enhancer = enhancer_from_preset("tiny")
    frames, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    output = enhancer.forward_with_weights(frames)
    term(LossInputs(frames, output, target)).backward()
    gradients = [p.grad for p in enhancer.parameters() if p.grad is not None]
    assert gradients and any(g.abs().sum() > 0 for g in gradients)
