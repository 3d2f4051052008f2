"""Round trips and reference values of every conversion in vqe.conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqe import conventions as cv


@pytest.fixture
def image_uint8() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def test_bgr_uint8_round_trip(image_uint8: np.ndarray) -> None:
    tensor = cv.bgr_uint8_to_tensor(image_uint8)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(cv.tensor_to_bgr_uint8(tensor), image_uint8)


def test_rgb_uint8_round_trip(image_uint8: np.ndarray) -> None:
    np.testing.assert_array_equal(cv.tensor_to_rgb_uint8(cv.rgb_uint8_to_tensor(image_uint8)), image_uint8)


def test_bgr_input_becomes_rgb_tensor() -> None:
    red_in_bgr = np.zeros((2, 2, 3), np.uint8)
    red_in_bgr[..., 2] = 255  # OpenCV stores red last
    tensor = cv.bgr_uint8_to_tensor(red_in_bgr)
    assert torch.equal(tensor[0], torch.ones(2, 2))
    assert tensor[1:].abs().sum() == 0


def test_uint8_checks_name_the_problem() -> None:
    with pytest.raises(ValueError, match="uint8"):
        cv.bgr_uint8_to_tensor(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="3×H×W"):
        cv.tensor_to_rgb_uint8(torch.zeros(1, 3, 2, 2))


def test_tensor_to_uint8_rounds_and_clips() -> None:
    frame = torch.tensor([-0.5, 0.6 / 255, 1.6 / 255, 2.0]).view(1, 1, 4).expand(3, 1, 4)
    assert cv.tensor_to_rgb_uint8(frame)[0, :, 0].tolist() == [0, 1, 2, 255]


def test_vqa_scale_reference_values() -> None:
    # v = 0, 128, 255 in 8-bit units → -1, 0, 127/128, and the channel order becomes BGR.
    rgb = torch.tensor([0.0, 128.0, 255.0]).div(255).view(1, 3, 1, 1)
    vqa = cv.to_vqa(rgb).flatten().tolist()
    assert vqa == pytest.approx([127 / 128, 0.0, -1.0], abs=1e-6)
    assert torch.allclose(cv.from_vqa(cv.to_vqa(rgb)), rgb, atol=1e-6)


def test_dover_scale_is_the_official_bgr_normalisation() -> None:
    # The official pipeline feeds OpenCV's BGR frames to DOVER: channel 0 of DOVER's input is
    # blue, normalised with the first ("red") ImageNet statistics.
    frames = torch.rand(2, 4, 3, 6, 5)  # N×T×C×H×W clips work too
    dover = cv.to_dover(frames)
    bgr = frames.flip(2)
    for channel in range(3):
        expected = (bgr[:, :, channel] * 255 - cv.DOVER_MEAN[channel]) / cv.DOVER_STD[channel]
        assert torch.allclose(dover[:, :, channel], expected, atol=1e-5)
    assert torch.allclose(cv.from_dover(dover), frames, atol=1e-6)


def test_dover_rgb_order_is_an_explicit_opt_in() -> None:
    frames = torch.rand(1, 3, 4, 4)
    rgb = cv.to_dover(frames, channel_order="rgb")
    for channel in range(3):
        expected = (frames[:, channel] * 255 - cv.DOVER_MEAN[channel]) / cv.DOVER_STD[channel]
        assert torch.allclose(rgb[:, channel], expected, atol=1e-5)
    assert not torch.allclose(rgb, cv.to_dover(frames))
    assert torch.allclose(cv.from_dover(rgb, channel_order="rgb"), frames, atol=1e-6)
    with pytest.raises(ValueError, match="channel_order='yuv'"):
        cv.to_dover(frames, channel_order="yuv")  # type: ignore[arg-type]


def test_conversions_keep_gradients() -> None:
    frames = torch.rand(1, 3, 4, 4, requires_grad=True)
    (cv.to_vqa(frames).sum() + cv.to_dover(frames).sum()).backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def test_vqa_scale_rmse_is_twice_unit_rmse() -> None:
    output, target = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    unit_rmse = (output - target).pow(2).flatten(1).mean(1).sqrt()
    assert torch.allclose(cv.vqa_scale_rmse(output, target), unit_rmse * 255 / 128, atol=1e-6)
