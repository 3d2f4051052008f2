"""How the graph is being run: traced or exported (eager-only fast paths step aside), or eager
CPU inference in fp32 (where oneDNN convolutions with fused activations and the fused LUT lookup
apply)."""

from __future__ import annotations

import torch


def is_exporting() -> bool:
    """True while the graph is being traced (CoreML, ONNX, the MAC count) or exported."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


def eager_cpu_inference(*tensors: torch.Tensor) -> bool:
    """True when an inference-only CPU kernel may take ``tensors``: eager fp32 on the CPU, no
    gradient wanted (such kernels have none), no autocast to honour, not traced or compiled."""
    if any(tensor.device.type != "cpu" or tensor.dtype != torch.float32 for tensor in tensors):
        return False
    wants_grad = torch.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors)
    # Under torch.compile the compiler does its own fusing of the plain ops.
    compiling = torch.compiler.is_compiling()
    return not (wants_grad or compiling or torch.is_autocast_enabled("cpu") or is_exporting())


def onednn_inference(features: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when a conv of ``features`` with ``weight`` may run as oneDNN's fused convolution
    (:func:`eager_cpu_inference`, with oneDNN in this build)."""
    return torch.backends.mkldnn.is_available() and eager_cpu_inference(features, weight)


def memory_format_of(tensor: torch.Tensor) -> torch.memory_format:
    """channels-last when ``tensor`` (frames, a conv weight) is laid out NHWC, else NCHW (a
    tensor that is both, e.g. 1×1 kernels, counts as NCHW)."""
    channels_last = not tensor.is_contiguous() and tensor.is_contiguous(
        memory_format=torch.channels_last
    )
    return torch.channels_last if channels_last else torch.contiguous_format
