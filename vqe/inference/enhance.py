"""Enhance a folder of videos into the submission layout: every ``*.mp4`` of ``dir_in`` under
the same file name in ``dir_out``, streamed (:mod:`vqe.inference.stream`) through a model
(:mod:`vqe.inference.backends`), one job per video (:mod:`vqe.batch_jobs`)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

from vqe.batch_jobs import FolderReport, process_folder
from vqe.inference.backends import ModelSpec, load_backend
from vqe.inference.stream import EnhanceSettings, enhance_video


def enhance_job(source: Path, destination: Path, spec: ModelSpec, settings: EnhanceSettings) -> int:
    """:func:`~vqe.inference.stream.enhance_video` with the model of ``spec``, loaded once per
    process. A module-level function of an importable module, so that worker processes can
    unpickle it (the ``-m`` entry module is ``__main__`` there)."""
    return enhance_video(source, destination, load_backend(spec), settings)


def enhance_folder(
    dir_in: str | Path,
    dir_out: str | Path,
    spec: ModelSpec,
    settings: EnhanceSettings | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> FolderReport:
    """Enhance every mp4 of ``dir_in`` into ``dir_out`` (same names); ``workers`` > 1 runs videos
    in parallel processes, each loading the model.

    Raises (before touching any video) when the model cannot be loaded or the folders are bad;
    a video that fails is listed in the report and the others still finish.
    """
    load_backend(spec)  # fail early on a bad model; also loads it for workers=1
    settings = settings if settings is not None else EnhanceSettings()
    # Per-video bars from parallel processes would garble each other.
    job_settings = settings if workers == 1 else replace(settings, progress=False)
    return process_folder(
        dir_in,
        dir_out,
        partial(enhance_job, spec=spec, settings=job_settings),
        workers=workers,
        overwrite=overwrite,
        description="enhance",
    )
