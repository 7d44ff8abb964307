"""Evaluation against ground truth: ``vid3d eval`` and the benchmarks.

- :mod:`.metrics`: pure metrics (depth AbsRel / delta, Sim(3) ATE / RPE, intrinsics, temporal
  consistency, mask IoU);
- :mod:`.groundtruth`: readers of ground-truth sequences (HoloLens / DeepVideoMVS, Open3D RGB-D,
  bundles, synthetic clips) into :class:`~.groundtruth.GroundTruthSequence`;
- :mod:`.report`: a bundle measured against ground truth (:func:`~.report.evaluate_bundle`) and its
  printed report (:func:`~.report.format_report`).

Imports :mod:`vid3d.formats` and :mod:`vid3d.synthetic` only.
"""
