"""Offline data preparation, run once before training: the frame index of the official layout
(:mod:`~vqe.dataprep.layout` lists the videos, :mod:`~vqe.dataprep.extract` writes their frames,
:mod:`~vqe.dataprep.index` the CSVs, :mod:`~vqe.dataprep.build` runs it all), the embedded demo
set (:mod:`~vqe.dataprep.demo`) and the input caches of the critics
(:mod:`~vqe.dataprep.precompute`).

What training loads at run time is :mod:`vqe.data`, a layer below: this package writes the files
it reads. The commands are ``vqe build``, ``vqe demo`` and ``vqe score-inputs``.
"""
