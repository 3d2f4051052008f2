"""vqe: train, measure and ship video-conferencing enhancers (image-adaptive 3-D LUT + light
U-Net) against frozen quality critics, within 20 GMAC per 1280×720 frame.

Entry points: ``train_vqe.py`` (training), ``export_coreml.py`` (deployment),
``codalab_scoring/score.py`` (official score); see README.md.
"""
