"""How the graph is being run: traced or exported (eager-only fast paths step aside), or eager
CPU inference in fp32 (where oneDNN convolutions with fused activations apply)."""

from __future__ import annotations

import torch


def is_exporting() -> bool:
    """True while the graph is being traced (CoreML, ONNX, the MAC count) or exported."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


def onednn_inference(features: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when a conv of ``features`` with ``weight`` may run as oneDNN's fused convolution:
    eager fp32 on the CPU, no gradient wanted (the fused op has none), no autocast to honour."""
    if features.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if features.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    wants_grad = torch.is_grad_enabled() and (features.requires_grad or weight.requires_grad)
    # Under torch.compile the compiler does its own fusing of the plain ops.
    compiling = torch.compiler.is_compiling()
    return not (wants_grad or compiling or torch.is_autocast_enabled("cpu") or is_exporting())


def memory_format_of(tensor: torch.Tensor) -> torch.memory_format:
    """channels-last when ``tensor`` (frames, a conv weight) is laid out NHWC, else NCHW (a
    tensor that is both, e.g. 1×1 kernels, counts as NCHW)."""
    channels_last = not tensor.is_contiguous() and tensor.is_contiguous(
        memory_format=torch.channels_last
    )
    return torch.channels_last if channels_last else torch.contiguous_format
