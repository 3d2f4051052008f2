"""vqe: train, measure and ship video-conferencing enhancers (image-adaptive 3-D LUT + light
U-Net) against frozen quality critics, within 20 GMAC per 1280×720 frame.

Entry points: ``train_vqe.py`` (training), ``export_coreml.py`` (deployment),
``codalab_scoring/score.py`` (official score); ``vqe --help`` lists the other tools
(:mod:`vqe.cli`); see README.md. The challenge facts the code relies on (data layout, critics
and their inputs, score, encoding, submission): ``docs/protocol.md``.

Layers, bottom up; an import may point only to its own layer or a lower one, never up, and
never in a cycle (the data is ``vqe/layers.py``, enforced by ``tests/test_layering.py``)::

    foundation    conventions, schema, config_root, output_paths, batch_jobs (a job over a
                  folder of videos, clean worker pools), devices, host_memory, video,
                  torch_files (safe loading), atomic (writes), layers, quiet (warning
                  filters of the entry points), config_hints (mistyped Hydra keys)
    models        models/ (enhancer, deploy graph, loading: presets, checkpoint → enhancer),
                  macs (counts the deploy graph), baseline/ (the hand-written tone curve)
    data, critics data/ (frames, pairs, the DOVER(x) cache it serves in the batch), critics/
                  (siblings; the critics work on tensors only)
    losses        losses
    metrics       metrics/ (frame and video metrics, official score, results layout,
                  Bradley–Terry; the scoring tools)
    training      training/ (its test loop writes the metrics)
    export        export/ (CoreML, ONNX, package metadata)
    inference     inference/ (backends, streaming, the enhance CLI)
    analysis      evaluate, benchmarks/, study/ (the preference-study web app)
    entry         cli (``vqe TOOL``)

Loading an enhancer (a preset, a trained checkpoint, the config root) has one home,
:mod:`vqe.models.loading`; training, evaluation, export and enhancement all call it.
"""
