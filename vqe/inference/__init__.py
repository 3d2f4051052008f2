"""Video enhancement for a submission: a trained enhancer (or its ONNX / CoreML export) run over
a folder of videos, official encoding.

Modules, bottom up: :mod:`~vqe.inference.backends` (the models that can run),
:mod:`~vqe.inference.stream` (one video as a stream, LUT-weight smoothing),
:mod:`~vqe.inference.enhance` (:func:`~vqe.inference.enhance.enhance_folder`, the library call:
one :mod:`vqe.batch_jobs` job per video) and :mod:`~vqe.inference.cli` (``python -m
vqe.inference``, also ``vqe enhance``).
"""
