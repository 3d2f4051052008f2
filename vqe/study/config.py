"""The study folder and its ``study.json``.

Layout of a study folder::

    STUDY/study.json           methods, videos, design settings, tokens
    STUDY/study.sqlite         raters, assignments, votes (vqe.study.db; WAL mode)
    STUDY/videos/METHOD/NAME   copies of the method videos (the only media the server serves,
    STUDY/gold/NAME            with the degraded gold copies)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIG_NAME = "study.json"
DB_NAME = "study.sqlite"
VIDEOS_DIR = "videos"
GOLD_DIR = "gold"
#: Method names appear in folder names and CSV cells: keep them plain.
METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
#: Video file names the study accepts (browsers play these containers).
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".m4v")
FORMAT_VERSION = 1


class StudyError(ValueError):
    """A study cannot be created, opened or served; the message names the file or value."""


@dataclass(frozen=True)
class StudyConfig:
    methods: tuple[str, ...]
    videos: tuple[str, ...]  # file names, the same in every method folder
    repeats: int  # how many votes each (video, method pair) gets over the whole study
    per_rater: int  # regular comparisons per rater (≤ the number of distinct comparisons)
    gold_rate: float  # gold questions per regular comparison
    gold_source: str  # the method whose videos the gold questions show
    seed: int
    token: str  # in every rater URL: /s/TOKEN/
    admin_token: str  # results and export over HTTP: /admin/TOKEN/
    version: int = FORMAT_VERSION

    @property
    def comparisons(self) -> int:
        """Distinct regular comparisons: videos × method pairs."""
        m = len(self.methods)
        return len(self.videos) * m * (m - 1) // 2


def config_path(root: Path) -> Path:
    return Path(root) / CONFIG_NAME


def write_config(root: Path, config: StudyConfig) -> Path:
    path = config_path(root)
    path.write_text(json.dumps(asdict(config), indent=2) + "\n")
    return path


def read_config(root: str | Path) -> StudyConfig:
    path = config_path(Path(root))
    if not path.is_file():
        raise StudyError(
            f"{path}: not found; {root} is not a study folder (make one with "
            "`python -m vqe.study create`)"
        )
    try:
        data = json.loads(path.read_text())
        data["methods"], data["videos"] = tuple(data["methods"]), tuple(data["videos"])
        config = StudyConfig(**data)
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise StudyError(f"{path}: not a valid study config ({error})") from error
    if config.version != FORMAT_VERSION:
        raise StudyError(f"{path}: format version {config.version}, this vqe reads {FORMAT_VERSION}")
    return config


def method_video(root: Path, method: str, name: str) -> Path:
    return Path(root) / VIDEOS_DIR / method / name


def gold_video(root: Path, name: str) -> Path:
    return Path(root) / GOLD_DIR / name
