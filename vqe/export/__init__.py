"""Export: converters of the re-parameterised, NPU-friendly deploy graph (built in
:mod:`vqe.models.deploy`) to CoreML and ONNX, and the packages' metadata. The commands are
``vqe export`` (:mod:`vqe.cli.export`) and ``vqe pack`` (:mod:`vqe.cli.pack`)."""
