"""Degradation library: shapes, ranges, seeding, the lighting targets and clip consistency."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vqe.data import degradations as deg
from vqe.data.person_region import Ellipse

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "degradation" / "realesrgan.yaml"

#: Only the Real-ESRGAN sensor steps, nothing temporal: frames of a clip must agree exactly.
NO_NOISE = deg.DegradationRanges(noise_prob=0.0, h264_prob=0.0, flicker_prob=0.0)


def photo_like(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, bright colour image with some texture (mean well above 50/255)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xs / width, ys / height, 0.5 + 0.3 * np.sin(xs / 5)], axis=2)
    texture = rng.uniform(-0.1, 0.1, size=(height, width, 3))
    return np.clip(0.25 + 0.6 * base + texture, 0, 1).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


STEPS = {
    "color_cast": lambda im, rng: deg.color_cast(im, (1.2, 1.0, 0.8)),
    "uneven_light": lambda im, rng: deg.uneven_light(
        im, deg.light_field(*im.shape[:2], deg.LightFieldParams(0.5, 0.5, (0.3, 0.6), 0.3, 0.4))
    ),
    "underexpose": lambda im, rng: deg.underexpose(im, 0.2, 1.3),
    "blur": lambda im, rng: deg.blur(im, deg.blur_kernel(9, 2.0, 0.7, 0.4, 2.0)),
    "resize": lambda im, rng: deg.resize(im, 30, 40, "area"),
    "gaussian_noise": lambda im, rng: deg.gaussian_noise(im, 20.0, False, rng),
    "poisson_noise": lambda im, rng: deg.poisson_noise(im, 1.0, True, rng),
    "jpeg": lambda im, rng: deg.jpeg(im, 40),
    "tone": lambda im, rng: deg.tone(im, 1.5),
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_each_step_returns_float32_rgb_in_range_and_changes_the_image(name: str) -> None:
    image = photo_like()
    out = STEPS[name](image, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[2] == 3
    if name != "resize":
        assert out.shape == image.shape
    else:
        assert out.shape == (30, 40, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    if name != "resize":
        assert not np.array_equal(out, image)
    assert np.array_equal(image, photo_like())  # the input is left alone


def test_steps_reject_uint8_and_wrong_layout_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="float32"):
        deg.jpeg((photo_like() * 255).astype(np.uint8), 90)
    with pytest.raises(ValueError, match="H×W×3"):
        deg.blur(photo_like().transpose(2, 0, 1).copy(), deg.blur_kernel(3, 1, 1))


@pytest.mark.parametrize(
    "shape, beta, sigmas",
    [
        ("generalized", 1.0, (1.5, 1.5)),
        ("generalized", 0.5, (2.5, 0.6)),
        ("plateau", 1.5, (1.0, 2.0)),
    ],
)
def test_blur_kernel_sums_to_one_and_has_the_asked_symmetry(
    shape: str, beta: float, sigmas: tuple
) -> None:
    kernel = deg.blur_kernel(11, *sigmas, angle=0.0, beta=beta, shape=shape)
    assert kernel.shape == (11, 11)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert kernel.min() >= 0 and kernel.argmax() == kernel.size // 2  # peak at the centre
    assert np.allclose(kernel, kernel[::-1, ::-1])  # point-symmetric always
    isotropic = sigmas[0] == sigmas[1]
    assert np.allclose(kernel, kernel.T) == isotropic


def test_blur_kernel_rotation_turns_the_long_axis() -> None:
    wide = deg.blur_kernel(15, 3.0, 0.5, angle=0.0)
    tall = deg.blur_kernel(15, 3.0, 0.5, angle=math.pi / 2)
    assert wide[7].sum() > wide[:, 7].sum()  # spread along x
    np.testing.assert_allclose(tall, wide.T, atol=1e-6)


def test_blur_kernel_rejects_even_sizes_and_unknown_shapes() -> None:
    with pytest.raises(ValueError, match="odd"):
        deg.blur_kernel(8, 1.0, 1.0)
    with pytest.raises(ValueError, match="plateau"):
        deg.blur_kernel(7, 1.0, 1.0, shape="box")


@pytest.mark.parametrize("target, gamma", [(50 / 255, 1.0), (50 / 255, 1.5), (0.12, 1.2)])
def test_underexpose_puts_the_mean_on_the_target(target: float, gamma: float) -> None:
    image = photo_like()
    assert image.mean() > 0.4
    assert deg.underexpose(image, target, gamma).mean() == pytest.approx(target, abs=2e-3)


def test_underexpose_reaches_a_bright_target_despite_clipping() -> None:
    dark = photo_like() * 0.3
    out = deg.underexpose(dark, 0.6)
    assert out.max() == 1.0  # the gain clipped highlights …
    assert out.mean() == pytest.approx(0.6, abs=2e-3)  # … and was refined to still hit the mean


def test_light_field_is_smooth_in_unit_range_and_darkens_away_from_the_spot() -> None:
    params = deg.LightFieldParams(
        angle=0.0, gradient_strength=0.5, spot_center=(0.2, 0.5), spot_radius=0.2, spot_strength=0.5
    )
    field = deg.light_field(90, 160, params)
    assert field.shape == (90, 160) and field.dtype == np.float32
    assert 0 < field.min() and field.max() <= 1
    assert field[45, 30] > field[45, 150]  # lit near the spot and the bright edge
    assert np.abs(np.diff(field, axis=1)).max() < 0.05  # no steps


def test_gaussian_noise_level_and_grey_noise() -> None:
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)
    colour = deg.gaussian_noise(flat, 10.0, gray=False, rng=np.random.default_rng(1))
    grey = deg.gaussian_noise(flat, 10.0, gray=True, rng=np.random.default_rng(1))
    assert (colour - flat).std() == pytest.approx(10 / 255, rel=0.05)
    assert not np.array_equal(colour[..., 0], colour[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


def test_poisson_noise_grows_with_the_signal() -> None:
    rng = np.random.default_rng(2)
    dark = np.full((64, 64, 3), 0.05, dtype=np.float32)
    bright = np.full((64, 64, 3), 0.6, dtype=np.float32)
    assert (deg.poisson_noise(bright, 1.0, False, rng) - bright).std() > 2 * (
        deg.poisson_noise(dark, 1.0, False, rng) - dark
    ).std()


def test_jpeg_changes_the_image_more_at_low_quality() -> None:
    image = photo_like()
    high, low = deg.jpeg(image, 95), deg.jpeg(image, 20)
    assert not np.array_equal(high, image)
    assert psnr(high, image) > psnr(low, image) > 20


def test_h264_reencode_keeps_the_clip_and_rejects_odd_sizes() -> None:
    clip = [photo_like(seed=seed) for seed in range(3)]
    out = deg.h264_reencode(clip, crf=35)
    assert len(out) == 3 and all(
        o.shape == c.shape and o.dtype == np.float32 for o, c in zip(out, clip, strict=True)
    )
    assert not np.array_equal(out[0], clip[0])
    assert psnr(out[0], clip[0]) > 18
    with pytest.raises(Exception, match="even"):
        deg.h264_reencode([photo_like(47, 64)], crf=30)


def test_flicker_gains_swing_by_the_amplitude() -> None:
    gains = deg.flicker_gains(60, fps=30, amplitude=0.05, frequency=1.0)
    assert gains.shape == (60,)
    assert gains.max() == pytest.approx(1.05, abs=1e-3) and gains.min() == pytest.approx(
        0.95, abs=1e-3
    )


def test_pipeline_same_seed_same_output_other_seed_other_output() -> None:
    pipeline = deg.DegradationPipeline()
    frame = torch.from_numpy(photo_like()).permute(2, 0, 1)
    first = pipeline(frame, np.random.default_rng(7))
    again = pipeline(frame, np.random.default_rng(7))
    other = pipeline(frame, np.random.default_rng(8))
    assert first.shape == frame.shape and first.dtype == frame.dtype
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_pipeline_takes_clips_and_keeps_dtype() -> None:
    pipeline = deg.DegradationPipeline(dataclasses.replace(deg.DegradationRanges(), h264_prob=1.0))
    clip = torch.stack(
        [torch.from_numpy(photo_like(seed=s)).permute(2, 0, 1) for s in range(3)]
    ).double()
    out = pipeline(clip, np.random.default_rng(3))
    assert out.shape == clip.shape and out.dtype == torch.float64


def test_pipeline_rejects_bad_input_and_bad_rng() -> None:
    pipeline = deg.DegradationPipeline()
    with pytest.raises(ValueError, match="3×H×W"):
        pipeline(torch.rand(4, 8, 8), np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        pipeline(torch.rand(3, 8, 8), 0)  # type: ignore[arg-type]


def test_clip_parameters_are_shared_by_every_frame() -> None:
    rng = np.random.default_rng(11)
    params = deg.sample_params(NO_NOISE, rng)
    frame = photo_like()
    out = deg.apply_params([frame, frame.copy(), frame.copy()], params, rng)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    # A clip of one frame gets the same result: nothing depends on the clip beyond the exposure.
    np.testing.assert_array_equal(deg.apply_params([frame], params, rng)[0], out[0])


def test_noise_is_fresh_per_frame_but_the_rest_is_shared() -> None:
    ranges = dataclasses.replace(NO_NOISE, noise_prob=1.0, jpeg_prob=0.0)
    rng = np.random.default_rng(5)
    params = deg.sample_params(ranges, rng)
    frame = photo_like()
    first, second = deg.apply_params([frame, frame.copy()], params, rng)
    assert not np.array_equal(first, second)
    assert abs(float(first.mean() - second.mean())) < 0.01


def test_clip_exposure_uses_one_gain_so_brightness_changes_survive() -> None:
    ranges = deg.DegradationRanges(
        color_cast_prob=0, uneven_light_prob=0, underexpose_prob=1, gamma=(1.0, 1.0),
        blur_prob=0, resize_probs=(0, 0, 1), noise_prob=0, jpeg_prob=0, h264_prob=0,
    )  # fmt: skip
    params = deg.sample_params(ranges, np.random.default_rng(0))
    frame = photo_like()
    darker, brighter = deg.apply_params([frame * 0.8, frame], params, np.random.default_rng(0))
    assert (darker.mean() + brighter.mean()) / 2 == pytest.approx(params.exposure[0], abs=2e-3)
    assert darker.mean() / brighter.mean() == pytest.approx(0.8, abs=0.01)


def test_flicker_varies_the_brightness_over_the_clip() -> None:
    ranges = dataclasses.replace(
        NO_NOISE, flicker_prob=1.0, flicker_amplitude=(0.08, 0.08), flicker_frequency=(2.0, 2.0)
    )
    params = deg.sample_params(ranges, np.random.default_rng(1))
    out = deg.apply_params([photo_like()] * 8, params, np.random.default_rng(1))
    means = np.array([image.mean() for image in out])
    assert means.max() / means.min() > 1.05


def test_sampling_respects_the_probabilities() -> None:
    off = deg.DegradationRanges(
        color_cast_prob=0, uneven_light_prob=0, underexpose_prob=0, blur_prob=0,
        resize_probs=(0, 0, 1), noise_prob=0, jpeg_prob=0, h264_prob=0,
    )  # fmt: skip
    params = deg.sample_params(off, np.random.default_rng(0))
    assert all(getattr(params, spec.name) is None for spec in dataclasses.fields(params))
    frame = photo_like()
    np.testing.assert_array_equal(
        deg.apply_params([frame], params, np.random.default_rng(0))[0], frame
    )
    on = dataclasses.replace(
        off, color_cast_prob=1, blur_prob=1, jpeg_prob=1, jpeg_quality=(40, 60)
    )
    sampled = deg.sample_params(on, np.random.default_rng(0))
    assert sampled.color_gains is not None and sampled.kernel is not None
    assert 40 <= sampled.jpeg_quality <= 60 and sampled.kernel.shape[0] % 2 == 1


def test_ranges_reject_bad_values_naming_the_key() -> None:
    with pytest.raises(ValueError, match="jpeg_prob"):
        deg.DegradationRanges(jpeg_prob=1.5)
    with pytest.raises(ValueError, match="noise_sigma"):
        deg.DegradationRanges(noise_sigma=(30.0, 1.0))
    with pytest.raises(ValueError, match="kernel_weights"):
        deg.DegradationRanges(kernel_weights={"box": 1.0})


def test_config_instantiates_the_documented_defaults() -> None:
    pipeline = instantiate(OmegaConf.load(CONFIG))
    assert isinstance(pipeline, deg.DegradationPipeline)
    assert pipeline.ranges == deg.DegradationRanges()
    assert isinstance(pipeline.ranges.noise_sigma, tuple) and isinstance(
        pipeline.ranges.kernel_weights, dict
    )


def test_describe_params_is_json_ready() -> None:
    import json

    params = deg.sample_params(deg.DegradationRanges(), np.random.default_rng(4))
    summary = deg.describe_params(params)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["blur_kernel_size"] == params.kernel.shape[0]


def test_a_backlit_subject_is_darker_than_the_room_and_old_seeds_are_unchanged() -> None:
    ranges = deg.DegradationRanges()
    lit = dataclasses.replace(ranges, subject_light_prob=1.0)
    plain, backlit = (deg.sample_params(r, np.random.default_rng(7)) for r in (ranges, lit))
    # The new step draws last: every other step of a seed is what it was before it existed.
    assert plain.subject is None and backlit.subject is not None
    assert deg.describe_params(dataclasses.replace(backlit, subject=None)) == deg.describe_params(
        plain
    )
    subject = deg.SubjectLightParams(Ellipse((0.5, 0.6), (0.2, 0.4)), gain=0.4, softness=0.5)
    field = deg.subject_field(90, 160, subject)
    assert field[54, 80] == pytest.approx(0.4) and field[0, 0] == pytest.approx(1.0)
    image = np.full((90, 160, 3), 0.5, np.float32)
    out = deg.apply_params(
        [image], deg.DegradationParams(subject=subject), np.random.default_rng(0)
    )[0]
    assert out[54, 80] == pytest.approx([0.2] * 3) and out[0, 0] == pytest.approx([0.5] * 3)
    assert "subject" in deg.describe_params(backlit)
