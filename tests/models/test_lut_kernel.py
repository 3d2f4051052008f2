"""The fused C++ LUT lookup: the official trilinear function, in any layout, on any thread count;
the deploy graph runs it eagerly on the CPU and falls back, with a warning, when it cannot."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch
from model_helpers import trained_like

from vqe.models import deploy as deploy_module
from vqe.models import lut_kernel
from vqe.models.deploy import build_deploy_model
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import identity_lut, trilinear_lookup

# Built here unless this machine has no C++ toolchain; CI sets VQE_REQUIRE_FUSED_LUT=1, so
# there a failed build fails this module instead of skipping it.
needs_kernel = pytest.mark.skipif(
    not lut_kernel.fused_lookup_available(),
    reason="the fused LUT lookup could not be built here (no C++ compiler or ninja)",
)
LAYOUTS = (torch.contiguous_format, torch.channels_last)


def rough_luts(batch: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, 3, size, size, size, generator=generator)
    return identity_lut(size)[None] + 0.3 * noise


@needs_kernel
@pytest.mark.parametrize("size", [2, 9, 33])
@pytest.mark.parametrize("threads", [1, 3])
def test_fused_lookup_equals_the_5d_trilinear_lookup(size: int, threads: int) -> None:
    luts = rough_luts(2, size, seed=size)
    # 5 × 131: rows of two full 64-pixel chunks and a tail; values beyond [0, 1] are clamped.
    frames = torch.rand(2, 3, 5, 131, generator=torch.Generator().manual_seed(1)) * 1.4 - 0.2
    frames[0, :, 0, :4] = torch.tensor([[0.0, 1.0, 0.5, 1.0 - 1e-7]] * 3)  # faces, lattice
    truth = trilinear_lookup(frames.double(), luts.double())
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)  # 3 threads split the 10 rows unevenly
        for layout_in in LAYOUTS:
            for layout_out in LAYOUTS:
                got = lut_kernel.fused_trilinear_lookup(
                    frames.contiguous(memory_format=layout_in), luts, layout_out
                )
                assert got.shape == truth.shape and got.dtype == torch.float32
                assert got.is_contiguous(memory_format=layout_out)
                # fp32 lerps of values up to ~2: float rounding, no more.
                assert (got.double() - truth).abs().max().item() < 2e-6
    finally:
        torch.set_num_threads(previous)


@needs_kernel
def test_fused_lookup_of_the_identity_returns_its_input_and_maps_nan_to_black() -> None:
    frames = torch.rand(1, 3, 4, 70, generator=torch.Generator().manual_seed(2))
    frames[0, :, 0, 0] = float("nan")
    got = lut_kernel.fused_trilinear_lookup(frames, identity_lut(17)[None], torch.channels_last)
    assert torch.allclose(got[..., 1:, :], frames[..., 1:, :], atol=1e-6)
    assert torch.equal(got[0, :, 0, 0], torch.zeros(3))  # NaN is clamped to 0, not read past


@needs_kernel
def test_fused_lookup_checks_its_inputs() -> None:
    frames = torch.rand(2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="luts must be B×3×D×D×D"):
        lut_kernel.fused_trilinear_lookup(frames, rough_luts(1, 5, 0), torch.contiguous_format)
    with pytest.raises(RuntimeError, match="float32"):
        lut_kernel.fused_trilinear_lookup(
            frames.double(), rough_luts(2, 5, 0).double(), torch.contiguous_format
        )


@needs_kernel
def test_the_eager_cpu_deploy_graph_runs_the_fused_lookup_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enhancer = trained_like(enhancer_from_preset("tiny")).eval()
    deploy = build_deploy_model(enhancer).to(memory_format=torch.channels_last)
    assert deploy.lut is not None
    frames = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    calls: list[torch.memory_format] = []

    def spy(frames: torch.Tensor, luts: torch.Tensor, memory_format: torch.memory_format):
        calls.append(memory_format)
        return lut_kernel.fused_trilinear_lookup(frames, luts, memory_format)

    monkeypatch.setattr(deploy_module, "fused_trilinear_lookup", spy)
    with torch.inference_mode():
        fused = deploy(frames)
        # The stage hands the channels-last U-Net its layout straight from the kernel.
        assert deploy.lut(frames, deploy.unet_memory_format()).is_contiguous(
            memory_format=torch.channels_last
        )
        assert calls == [torch.channels_last, torch.channels_last]
        monkeypatch.setattr(deploy_module, "fused_lookup_available", lambda: False)
        fallback = deploy(frames)  # the grid_sample atlas lookup
        trained = enhancer(frames)
    assert len(calls) == 2
    assert (fused - fallback).abs().max().item() < 1e-5
    assert (fused - trained).abs().max().item() < 1e-5


@needs_kernel
def test_frames_that_want_a_gradient_take_the_differentiable_lookup() -> None:
    deploy = build_deploy_model(trained_like(enhancer_from_preset("tiny")))
    assert deploy.lut is not None
    frames = torch.rand(1, 3, 16, 16, requires_grad=True)
    deploy.lut(frames).sum().backward()  # the kernel has no gradient: grid_sample runs
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def failing_load(**_: object) -> None:
    raise RuntimeError("Ninja is required to load C++ extensions")


def test_a_failed_build_warns_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # nothing built there yet
    monkeypatch.setattr("torch.utils.cpp_extension.load", failing_load)
    monkeypatch.delenv(lut_kernel.REQUIRE_VARIABLE, raising=False)
    with caplog.at_level(logging.WARNING, logger=lut_kernel.__name__):
        assert lut_kernel._load() is False
    assert "Ninja is required" in caplog.text and "apt install g++" in caplog.text
    monkeypatch.setenv(lut_kernel.REQUIRE_VARIABLE, "1")
    with pytest.raises(RuntimeError, match="could not be built and VQE_REQUIRE_FUSED_LUT=1"):
        lut_kernel._load()
    monkeypatch.setenv(lut_kernel.SWITCH_VARIABLE, "0")  # switched off: not even tried
    assert lut_kernel._load() is False


@needs_kernel
def test_a_kernel_built_before_is_loaded_without_the_builder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (lut_kernel.build_directory() / f"{lut_kernel.extension_name()}.so").is_file()
    monkeypatch.setattr("torch.utils.cpp_extension.load", failing_load)
    assert lut_kernel._load() is True


def test_a_cut_short_library_is_built_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    library = lut_kernel.build_directory() / f"{lut_kernel.extension_name()}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"\x7fELF cut short")
    built: list[dict] = []
    monkeypatch.setattr("torch.utils.cpp_extension.load", lambda **kwargs: built.append(kwargs))
    assert lut_kernel._load() is True
    assert not library.exists()  # removed, and the builder asked to build into its folder
    assert [call["build_directory"] for call in built] == [str(library.parent)]


def test_the_build_name_follows_the_source_the_cpu_and_the_torch_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = lut_kernel.extension_name()
    assert name.startswith("vqe_trilinear_lut_") and name == lut_kernel.extension_name()
    monkeypatch.setattr(torch, "__version__", "0.0.0-another")
    assert lut_kernel.extension_name() != name
    monkeypatch.undo()
    monkeypatch.setattr(lut_kernel, "BUILD_FLAGS", ["-O2"])
    assert lut_kernel.extension_name() != name


def test_a_lock_left_by_a_killed_build_is_cleared_and_a_fresh_one_kept(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    lut_kernel.clear_stale_lock(tmp_path)
    assert lock.exists()  # another process may be building right now
    old = time.time() - lut_kernel.STALE_LOCK_S - 60
    os.utime(lock, (old, old))
    lut_kernel.clear_stale_lock(tmp_path)
    assert not lock.exists()
    lut_kernel.clear_stale_lock(tmp_path)  # and no lock at all is fine
