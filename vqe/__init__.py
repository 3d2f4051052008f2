"""vqe: train, measure and ship video-conferencing enhancers (image-adaptive 3-D LUT + light
U-Net) against frozen quality critics, within 20 GMAC per 1280×720 frame.

Entry points: ``train_vqe.py`` (training, also ``vqe train``), ``export_coreml.py`` (deployment),
``codalab_scoring/score.py`` (official score); ``vqe --help`` lists the other tools
(:mod:`vqe.cli`); see README.md. The challenge facts the code relies on (data layout, critics
and their inputs, score, encoding, submission): ``docs/protocol.md``.

Layers, bottom up; an import may point only to its own layer or a lower one, never up, and
never in a cycle (the data is ``vqe/layers.py``, enforced by ``tests/test_layering.py``)::

    foundation    conventions, schema, config_root, output_paths, batch_jobs (a job over a
                  folder of videos, clean worker pools), devices, host_memory, video,
                  torch_files (safe loading), atomic (writes), layers, quiet (warning
                  filters of the entry points), moved (deprecated python -m paths)
    models        models/ (enhancer, deploy graph, loading: presets, checkpoints → enhancer),
                  macs (counts the deploy graph), baseline/ (the hand-written tone curve)
    data, critics data/ (what training loads: frames, pairs, the input caches it serves in
                  the batch), critics/ (siblings; the critics work on tensors only)
    data preparation  dataprep/ (offline: the frame index of the official layout, the demo
                  set, filling the input caches)
    losses        losses
    metrics       metrics/ (frame and video metrics, official score, results layout,
                  scoring a method's output videos)
    preference    preference/ (pairwise preference: human votes through P.910 and
                  Bradley–Terry, the critics' tournament)
    training      training/ (training and evaluation; its test loop writes the metrics)
    export        export/ (CoreML, ONNX, package metadata)
    inference     inference/ (backends, streaming, the presets' cost)
    analysis      study/ (the preference-study web app)
    entry         cli/ (``vqe TOOL``: one module per tool, the benchmarks in cli/bench/);
                  benchmarks/ and evaluate: the deprecated python -m paths (one release)

Loading an enhancer (a preset, a trained checkpoint, stage initialisation, the config root) has
one home, :mod:`vqe.models.loading`; training, evaluation, export and enhancement all call it.
"Checkpoint" means the enhancer's (Lightning) checkpoints; the critics' files are weight files
(:mod:`vqe.critics.weights`).
"""
