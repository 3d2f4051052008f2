"""A build job whose worker process dies on one item, for the crash tests of
``test_input_reliability.py``. A module of its own, importing only what the builder's workers
have loaded already, so that each fresh worker starts in a moment."""

from __future__ import annotations

import os
import signal

from vqe.dataprep.extract import ItemResult, Settings
from vqe.dataprep.index import IndexedVideo
from vqe.dataprep.layout import Item


def crash_on_bad_name(item: Item, settings: Settings) -> ItemResult:
    """Die of SIGSEGV (as OpenCV's imwrite did on a non-UTF-8 path) on an item named "bad"."""
    if item.video_id == "bad":
        os.kill(os.getpid(), signal.SIGSEGV)
    video = IndexedVideo(
        item.split, item.subset, item.video_id, f"{item.video_id}/x", None, 3, 48, 64, 30.0
    )
    return ItemResult(item, video=video)
