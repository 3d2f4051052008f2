"""``compare``: one static, read-only HTML page comparing method folders video by video.

Per video: the methods side by side with synchronised playback (the study page's
``static/sync.js``, inlined), a table of per-video metrics and each method's temporal profile
(:func:`vqe.metrics.temporal.temporal_profile`, inline PNG). Metrics, each only when its
reference exists:

* PSNR and SSIM against ``targets`` (:func:`vqe.metrics.full_reference.frame_psnr` /
  ``frame_ssim``, mean over frames);
* flicker against ``inputs`` (the videos the methods enhanced), or against ``targets`` when no
  inputs are given (:func:`vqe.metrics.temporal.video_flicker`);
* DOVER (mean fused score of up to :data:`CRITIC_FRAMES` evenly spaced frames) with ``dover``
  weights, and the VQA output ``p`` for (input frame, method frame) with ``vqa`` weights and
  ``inputs`` (it needs DOVER's scores too).

The page references the videos by paths relative to itself (``copy=True`` copies them into a
``videos/`` folder beside it, so the folder can be sent as a whole). Nothing loads from the
internet.
"""

from __future__ import annotations

import base64
import io
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image

from vqe.conventions import rgb_uint8_to_tensor
from vqe.critics.dover import DoverCritic
from vqe.critics.scorer import CriticScorer
from vqe.critics.vqa import VQA
from vqe.metrics.full_reference import frame_psnr, frame_ssim
from vqe.metrics.temporal import temporal_profile, video_flicker
from vqe.study.config import StudyError
from vqe.study.create import common_videos
from vqe.video import read_frames

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
CRITIC_FRAMES = 4
#: Size of a temporal profile on the page, in pixels. A profile is one column per frame, so a
#: clip of a few dozen frames drawn at its own width is a strip too thin to read: each frame
#: becomes a band of equal whole-pixel width, the strip at least PROFILE_MIN_WIDTH wide; a
#: long clip is averaged down to PROFILE_MAX_WIDTH.
PROFILE_HEIGHT = 128
PROFILE_MIN_WIDTH = 192
PROFILE_MAX_WIDTH = 960


def _frames(path: Path) -> list[np.ndarray]:
    return list(read_frames(path))


def profile_image(profile: np.ndarray) -> Image.Image:
    """A temporal profile (H×T×3 uint8) at the page's size (see :data:`PROFILE_HEIGHT`)."""
    frames = profile.shape[1]
    # Rows are averaged down (BOX), not dropped: a 720-row column keeps what each row shows.
    image = Image.fromarray(profile).resize((frames, PROFILE_HEIGHT), Image.BOX)
    band = max(1, math.ceil(PROFILE_MIN_WIDTH / frames))
    if frames * band > PROFILE_MAX_WIDTH:
        return image.resize((PROFILE_MAX_WIDTH, PROFILE_HEIGHT), Image.BOX)
    return image.resize((frames * band, PROFILE_HEIGHT), Image.NEAREST)  # sharp frame edges


def _png(profile: np.ndarray) -> str:
    buffer = io.BytesIO()
    profile_image(profile).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([rgb_uint8_to_tensor(f) for f in frames])


def _full_reference(frames: list[np.ndarray], target: list[np.ndarray]) -> dict[str, float]:
    count = min(len(frames), len(target))
    outputs, targets = _tensor(frames[:count]), _tensor(target[:count])
    return {
        "PSNR dB": float(frame_psnr(outputs, targets).mean()),
        "SSIM": float(frame_ssim(outputs, targets).mean()),
    }


def _sampled(frames: list[np.ndarray]) -> list[np.ndarray]:
    picks = np.unique(np.linspace(0, len(frames) - 1, min(CRITIC_FRAMES, len(frames))).round())
    return [frames[int(i)] for i in picks]


@torch.no_grad()
def _critic_scores(
    frames: list[np.ndarray],
    input_frames: list[np.ndarray] | None,
    vqa: VQA | None,
    dover: DoverCritic | None,
) -> dict[str, float]:
    """DOVER of the method's sampled frames; with the VQA and the inputs, its ``p`` (the
    probability that the method's frame is preferred over the input's) exactly as the test loop
    computes it (:class:`~vqe.critics.scorer.CriticScorer`, float32, DOVER(x) on the frame)."""
    if dover is None:
        return {}
    outputs = _tensor(_sampled(frames))
    scores = {"DOVER": float(dover(outputs).mean())}
    if vqa is not None and input_frames is not None:
        inputs = _tensor(_sampled(input_frames))
        count = min(len(inputs), len(outputs))
        scorer = CriticScorer(vqa, dover, input_dover="online")
        scores["VQA p"] = float(scorer(outputs[:count], inputs[:count], exact=True).p.mean())
    return scores


def video_entries(
    methods: dict[str, Path],
    targets: Path | None = None,
    inputs: Path | None = None,
    vqa=None,
    dover=None,
) -> list[dict]:
    """Per video: name, per-method metrics and profile PNGs (base64)."""
    videos = common_videos(methods)
    for label, folder in (("--targets", targets), ("--inputs", inputs)):
        if folder is not None:
            missing = [name for name in videos if not (folder / name).is_file()]
            if missing:
                raise StudyError(f"{label} {folder} lacks {missing}; it needs every video name")
    flicker_reference = inputs if inputs is not None else targets
    entries = []
    for name in videos:
        target = _frames(targets / name) if targets is not None else None
        input_frames = _frames(inputs / name) if inputs is not None else None
        rows = []
        for method, folder in methods.items():
            frames = _frames(folder / name)
            metrics: dict[str, float] = {}
            if target is not None:
                metrics.update(_full_reference(frames, target))
            if flicker_reference is not None:
                metrics["flicker"] = video_flicker(folder / name, flicker_reference / name)
            metrics.update(_critic_scores(frames, input_frames, vqa, dover))
            rows.append(
                {"method": method, "path": folder / name, "metrics": metrics,
                 "profile": _png(temporal_profile(frames)), "frames": len(frames)}
            )
        entries.append({"name": name, "rows": rows})
    return entries


def write_compare_page(
    methods: dict[str, Path],
    out: str | Path,
    targets: Path | None = None,
    inputs: Path | None = None,
    vqa: Path | None = None,
    dover: Path | None = None,
    copy: bool = False,
    critics: tuple | None = None,
) -> Path:
    """Write the page to ``out``; ``critics`` = (vqa, dover) modules instead of weight files."""
    if critics is None and (vqa is not None or dover is not None):
        if vqa is not None and (dover is None or inputs is None):
            raise StudyError("--vqa needs --dover (its inputs include DOVER scores) and --inputs")
        from vqe.critics.dover import build_dover
        from vqe.critics.vqa import load_vqa

        # The official DOVER setting (32 frames × 3 technical clips) and channel order.
        critics = (load_vqa(vqa) if vqa else None, build_dover(dover))
    vqa_model, dover_model = critics if critics is not None else (None, None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = video_entries(methods, targets, inputs, vqa_model, dover_model)
    for entry in entries:
        for row in entry["rows"]:
            source: Path = row.pop("path")
            if copy:
                target = out.parent / "videos" / row["method"] / entry["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                source = target
            row["src"] = Path(os.path.relpath(source.resolve(), out.parent.resolve())).as_posix()
    columns = sorted({key for e in entries for r in e["rows"] for key in r["metrics"]},
                     key=["PSNR dB", "SSIM", "flicker", "DOVER", "VQA p"].index)
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    html = environment.get_template("compare.html").render(
        entries=entries, columns=columns, methods=list(methods),
        sync_js=(STATIC / "sync.js").read_text(),
        targets=targets, inputs=inputs,
    )
    out.write_text(html)
    return out
