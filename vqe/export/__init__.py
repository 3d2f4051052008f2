"""Export: converters of the re-parameterised, NPU-friendly deploy graph (built in
:mod:`vqe.models.deploy`, re-exported here) to CoreML and ONNX, and the packages' metadata."""

from vqe.models.deploy import DeployEnhancer, build_deploy_model

__all__ = ["DeployEnhancer", "build_deploy_model"]
