"""Video enhancement for a submission: a trained enhancer (or its ONNX / CoreML export) run over
videos and images (files or folders), official encoding.

Modules, bottom up: :mod:`~vqe.inference.backends` (the models that can run, fp16 on CUDA),
:mod:`~vqe.inference.tiles` (the U-Net in tiles, LUT weights from the whole frame),
:mod:`~vqe.inference.stream` (one video as a stream, LUT-weight smoothing),
:mod:`~vqe.inference.inputs` (files and folders → (input, output) pairs, what is refused),
:mod:`~vqe.inference.enhance` (:func:`~vqe.inference.enhance.enhance_inputs`, the library call:
one :mod:`vqe.batch_jobs` job per video or image) and :mod:`~vqe.inference.presets` (the presets'
cost and size, the shipped models). The commands are ``vqe enhance`` (:mod:`vqe.cli.enhance`)
and ``vqe models`` (:mod:`vqe.cli.models`).
"""
