"""Run-time data: what training and evaluation load — the frame index read into datasets, the
datamodule and its batching, transforms, the degradations and clean-photo pool that synthesise
pairs on the fly, and the on-disk input caches of the critics' values.

Making data offline (the frame index of the official layout, the demo set, filling the input
caches) is :mod:`vqe.dataprep`, a layer above: nothing here imports it.
"""
