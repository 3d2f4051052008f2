"""The package's layers as data: the one machine-readable copy of the order in ``vqe/__init__.py``.

Bottom up; a module may import only from its own layer or one below it (``tests/test_layering.py``
checks every import, module- and function-level, and also refuses import cycles). A *unit* is a
sub-package (``vqe.data``) or a top-level module (``vqe.macs``); each unit has exactly one layer.
"""

from __future__ import annotations

#: (layer name, units in it), lowest first.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("vqe", "vqe.layers", "vqe.conventions", "vqe.schema", "vqe.config_root",
                    "vqe.output_paths", "vqe.batch_jobs", "vqe.devices", "vqe.host_memory",
                    "vqe.video", "vqe.torch_files", "vqe.atomic", "vqe.quiet",
                    "vqe.moved")),
    # The enhancers: the trained two-stage model and the hand-written tone-curve baseline.
    ("models", ("vqe.models", "vqe.macs", "vqe.baseline")),
    # Run-time data (what training loads) and the critics, siblings.
    ("data, critics", ("vqe.data", "vqe.critics")),
    # Offline data preparation: the official layout → frame index, the demo set, critic caches.
    ("data preparation", ("vqe.dataprep",)),
    ("losses", ("vqe.losses",)),
    # What a run measures (frame and video metrics, the official score, the results layout):
    # below training, whose test loop writes them.
    ("metrics", ("vqe.metrics",)),
    # Pairwise preference analysis: human votes (P.910, Bradley–Terry) and the critics' tournament.
    ("preference", ("vqe.preference",)),
    ("training", ("vqe.training",)),
    ("export", ("vqe.export",)),
    ("inference", ("vqe.inference",)),
    ("analysis", ("vqe.study",)),  # the preference-study web app
    # The commands wing: every tool's main() (vqe.cli.<tool>; the benchmarks in vqe.cli.bench)
    # and the deprecated python -m aliases of old paths, which import vqe.moved only.
    ("entry points", ("vqe.cli", "vqe.benchmarks", "vqe.evaluate")),
)


def unit_of(module: str) -> str:
    """``vqe.data.photos`` → ``vqe.data``; ``vqe.macs`` → ``vqe.macs``; ``vqe`` → ``vqe``."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the unit holding ``module``; KeyError for an unplaced unit."""
    unit = unit_of(module)
    for index, (_, units) in enumerate(LAYERS):
        if unit in units:
            return index
    raise KeyError(f"{unit}: not placed in vqe.layers.LAYERS; give it a layer there")
