"""The model presets ``vqe enhance`` can run once trained, and what each costs.

The presets are ``configs/model_vqe/*.yaml`` (train one with ``train_vqe.py model_vqe=NAME``).
A preset's cost per 1280×720 frame is counted on the deploy graph that is exported and enhanced
with (:func:`vqe.models.deploy.build_deploy_model`, :func:`vqe.macs.count_macs`, as the export's
budget report does), with its stored numbers and their size in fp16 (what a ``--half`` model or
a CoreML package holds). ``vqe models`` (:mod:`vqe.cli.models`) prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

from vqe.config_root import CONFIG_DIR

PRESET_DIR = CONFIG_DIR / "model_vqe"


@dataclass(frozen=True)
class PresetCost:
    name: str
    gmacs: float  # per 1280×720 frame, deploy graph
    parameters: int  # stored numbers of the deploy graph (parameters and buffers)

    @property
    def fp16_mb(self) -> float:
        return self.parameters * 2 / 1e6


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def preset_cost(name: str) -> PresetCost:
    """Build preset ``name`` and count its deploy graph at 1280×720."""
    # Imported here: the names (and ``vqe models --help``) need neither torch nor fvcore.
    from vqe.export.metadata import parameter_count
    from vqe.macs import count_macs
    from vqe.models.deploy import build_deploy_model
    from vqe.models.loading import enhancer_from_preset

    deploy = build_deploy_model(enhancer_from_preset(name).eval())
    return PresetCost(name, count_macs(deploy).gmacs, parameter_count(deploy))


__all__ = ["PRESET_DIR", "PresetCost", "preset_cost", "preset_names"]
