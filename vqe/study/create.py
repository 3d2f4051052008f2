"""``create``: a study folder from method folders (videos with the same file names).

The videos are copied into the study folder (so it can be moved, and so the server only ever
serves its own files) and every video of the gold source method gets a degraded copy for the
gold questions: a quarter-size, blurred, noisy re-encode at a low quality (CRF 45), so the
original is clearly better.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vqe.study.config import (
    DB_NAME,
    METHOD_NAME,
    VIDEO_SUFFIXES,
    StudyConfig,
    StudyError,
    config_path,
    gold_video,
    method_video,
    write_config,
)
from vqe.study.db import connect
from vqe.video import VideoError, pix_fmt_for, probe, read_frames, write_video

GOLD_CRF = 45
_GOLD_SCALE = 4  # downscale factor of the degraded copy
_GOLD_NOISE = 12.0  # Gaussian noise σ (0–255) added before encoding


def parse_methods(specs: Sequence[str]) -> dict[str, Path]:
    """``NAME=DIR`` (or ``DIR``: the folder's name) → {name: folder}, in the order given."""
    methods: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            folder, name = spec, Path(spec).resolve().name
        if not METHOD_NAME.match(name):
            raise StudyError(
                f"method name {name!r} (from {spec!r}): use letters, digits and _ . + - "
                "(up to 64), starting with a letter or digit"
            )
        if name in methods:
            raise StudyError(f"method {name!r} is given twice; give each NAME=DIR once")
        path = Path(folder)
        if not path.is_dir():
            raise StudyError(f"method {name}: {path} is not a folder")
        methods[name] = path
    if len(methods) < 2:
        raise StudyError(f"a study compares at least 2 methods, got {len(methods)}")
    return methods


def common_videos(methods: dict[str, Path]) -> list[str]:
    """The video file names, which every method folder must hold (same names)."""
    found = {
        name: {p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()}
        for name, folder in methods.items()
    }
    every = set().union(*found.values())
    problems = [
        f"{methods[name]} ({name}) lacks {sorted(every - names)}"
        for name, names in found.items()
        if every - names
    ]
    if problems:
        raise StudyError(
            "every method folder must hold the same video names: " + "; ".join(problems)
        )
    if not every:
        raise StudyError(
            f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(map(str, methods.values()))}"
        )
    return sorted(every)


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    small = cv2.resize(
        image,
        (max(1, width // _GOLD_SCALE), max(1, height // _GOLD_SCALE)),
        interpolation=cv2.INTER_AREA,
    )
    blocky = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    noisy = blocky.astype(np.float32) + rng.normal(0.0, _GOLD_NOISE, blocky.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def degrade_video(source: Path, target: Path, seed: int = 0) -> int:
    """Write the degraded gold copy of ``source`` to ``target``; returns its frame count."""
    info = probe(source)
    rng = np.random.default_rng(seed)
    fps = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else Fraction(30)
    return write_video(
        target,
        (_degrade(frame, rng) for frame in read_frames(source)),
        fps=fps,
        crf=GOLD_CRF,
        pix_fmt=pix_fmt_for(info.width, info.height),
    )


def create_study(
    root: str | Path,
    methods: dict[str, Path],
    repeats: int = 3,
    per_rater: int | None = None,
    gold_rate: float = 0.1,
    gold_source: str | None = None,
    seed: int = 0,
) -> StudyConfig:
    """Make the study folder ``root`` (which must not hold a study yet); returns its config."""
    root = Path(root)
    if config_path(root).exists():
        raise StudyError(f"{config_path(root)} exists: {root} is a study already; pick a new folder")
    if root.exists() and any(root.iterdir()):
        raise StudyError(f"{root} is not empty; a study needs a new or empty folder")
    if repeats < 1:
        raise StudyError(f"--repeats must be ≥ 1, got {repeats}")
    if not 0 <= gold_rate <= 1:
        raise StudyError(f"--gold-rate must be in [0, 1], got {gold_rate}")
    gold_source = gold_source or next(iter(methods))
    if gold_source not in methods:
        raise StudyError(f"--gold-source {gold_source!r} is not one of the methods {list(methods)}")
    videos = common_videos(methods)
    comparisons = len(videos) * len(methods) * (len(methods) - 1) // 2
    per_rater = comparisons if per_rater is None else per_rater
    if not 1 <= per_rater <= comparisons:
        raise StudyError(
            f"--per-rater must be 1…{comparisons} (videos × method pairs), got {per_rater}"
        )
    for name in videos:  # fail before copying anything when a file is not a video
        for method, folder in methods.items():
            try:
                probe(folder / name)
            except VideoError as error:
                raise StudyError(f"method {method}: {error}") from error
    root.mkdir(parents=True, exist_ok=True)
    for method, folder in methods.items():
        for name in videos:
            target = method_video(root, method, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / name, target)  # the content, even of a symlink
    for index, name in enumerate(videos):
        degrade_video(method_video(root, gold_source, name), gold_video(root, name), seed + index)
    config = StudyConfig(
        methods=tuple(methods),
        videos=tuple(videos),
        repeats=repeats,
        per_rater=per_rater,
        gold_rate=gold_rate,
        gold_source=gold_source,
        seed=seed,
        token=secrets.token_urlsafe(16),
        admin_token=secrets.token_urlsafe(16),
    )
    connect(root / DB_NAME).close()
    write_config(root, config)
    return config
