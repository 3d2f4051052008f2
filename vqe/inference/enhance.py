"""Enhance videos and images into a folder: each input (:mod:`vqe.inference.inputs` plans them:
files, folders, several formats) streamed (:mod:`vqe.inference.stream`) through a model
(:mod:`vqe.inference.backends`), one job per input (:mod:`vqe.batch_jobs`).

:func:`enhance_folder` keeps the submission layout (every video of ``dir_in`` under the same
name in ``dir_out``); :func:`enhance_inputs` takes any mix of files and folders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vqe.batch_jobs import FolderReport, run_jobs
from vqe.inference.backends import FrameEnhancer, ModelSpec, load_backend
from vqe.inference.inputs import is_image, plan_inputs
from vqe.inference.stream import EnhanceSettings, enhance_frames, enhance_video

JPEG_QUALITY = 95  # enhanced photos: near-lossless, still a fraction of a PNG's size


def enhance_image(
    source: Path, destination: Path, model: FrameEnhancer, settings: EnhanceSettings
) -> int:
    """Enhance one image into ``destination`` (its format from the suffix); returns 1.

    The picture is turned upright by its EXIF orientation first; an alpha channel is kept."""
    try:
        with Image.open(source) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except (OSError, ValueError) as error:  # PIL: UnidentifiedImageError, truncated files
        raise ValueError(f"{source}: cannot be read as an image ({error})") from error
    rgb = np.array(picture.convert("RGB"))  # a writable copy, as torch.from_numpy wants
    (enhanced,) = enhance_frames([rgb], model, replace(settings, smoothing=False))
    result = Image.fromarray(enhanced)
    if "A" in picture.getbands() and not is_jpeg(destination):
        result.putalpha(picture.getchannel("A"))
    options = {"quality": JPEG_QUALITY} if is_jpeg(destination) else {}
    result.save(destination, format="JPEG" if is_jpeg(destination) else "PNG", **options)
    return 1


def is_jpeg(path: Path) -> bool:
    return path.suffix.lower() in (".jpg", ".jpeg")


def enhance_job(source: Path, destination: Path, spec: ModelSpec, settings: EnhanceSettings) -> int:
    """:func:`~vqe.inference.stream.enhance_video` (or :func:`enhance_image`) with the model of
    ``spec``, loaded once per process. A module-level function of an importable module, so that
    worker processes can unpickle it (the ``-m`` entry module is ``__main__`` there)."""
    model = load_backend(spec)
    if is_image(source):
        return enhance_image(source, destination, model, settings)
    return enhance_video(source, destination, model, settings)


def enhance_inputs(
    inputs: Sequence[str | Path],
    dir_out: str | Path,
    spec: ModelSpec,
    settings: EnhanceSettings | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> FolderReport:
    """Enhance the videos and images of ``inputs`` (files and folders) into ``dir_out``:
    videos as ``STEM.mp4``, images under their own names (:mod:`vqe.inference.inputs`).
    ``workers`` > 1 runs inputs in parallel processes, each loading the model.

    Raises (before touching any input) when the model cannot be loaded, an output would be an
    input, or the only input given cannot be enhanced; otherwise an input that fails is listed
    in the report and the others still finish.
    """
    load_backend(spec)  # fail early on a bad model; also loads it for workers=1
    todo, report = plan_inputs(inputs, dir_out, overwrite)
    if not todo and not report.skipped and len(report.failed) == 1:
        raise ValueError(report.failed[0][1])  # nothing else to do: a one-line error
    settings = settings if settings is not None else EnhanceSettings()
    # Per-video bars from parallel processes would garble each other.
    job_settings = settings if workers == 1 else replace(settings, progress=False)
    if todo:
        Path(dir_out).mkdir(parents=True, exist_ok=True)
    job = partial(enhance_job, spec=spec, settings=job_settings)
    return run_jobs(todo, report, job, workers=workers, description="enhance")


def enhance_folder(
    dir_in: str | Path,
    dir_out: str | Path,
    spec: ModelSpec,
    settings: EnhanceSettings | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> FolderReport:
    """Enhance every video and image of ``dir_in`` into ``dir_out`` (:func:`enhance_inputs`)."""
    return enhance_inputs([dir_in], dir_out, spec, settings, workers, overwrite)
