"""Export: the re-parameterised, NPU-friendly deploy graph (deploy.py) and its converters."""

from vqe.export.deploy import DeployEnhancer, build_deploy_model

__all__ = ["DeployEnhancer", "build_deploy_model"]
