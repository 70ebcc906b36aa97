# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Tube overlaps of the evaluation protocols: temporal IoU and spatio-temporal IoU.

Boxes are continuous pixel xyxy, as everywhere inside stal_ros (``stal_ros.geometry``); data
sets whose annotations are inclusive pixel boxes are converted once, where they are read
(``GroundTruth.from_act``).  Frames are inclusive ranges of frame numbers.

Both protocols use the same overlaps (ACT's ``iou3dt``): the temporal intersection and union
are inclusive frame counts.  ROAD's MATLAB (``compute_spatio_temporal_iou.m``) differs in one
corner we do not reproduce: its intersection ``max(0, min(end) - max(start))`` gets its + 1
only when positive, so tubes sharing exactly one frame have ST-IoU 0 there (even a one-frame
tube with itself).  That only changes ST-IoUs of at most 1 / (frames in the union), below every
threshold in use (>= 0.2) unless the union spans at most 5 frames.
Letters: n frames of a tube.
"""

from __future__ import annotations

import numpy as np

from stal_ros.geometry import paired_iou


def temporal_iou(frames_a: np.ndarray, frames_b: np.ndarray) -> float:
    """Compute the IoU of two tubes' inclusive frame ranges [first, last] (0 if disjoint)."""
    a0, a1 = int(frames_a[0]), int(frames_a[-1])
    b0, b1 = int(frames_b[0]), int(frames_b[-1])
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    return inter / (max(a1, b1) - min(a0, b0) + 1)


def spatio_temporal_iou(frames_a: np.ndarray, boxes_a: np.ndarray, frames_b: np.ndarray,
                        boxes_b: np.ndarray) -> float:
    """Spatio-temporal IoU of two tubes (ROAD ``compute_spatio_temporal_iou`` / ACT ``iou3dt``).

    Temporal IoU of the frame ranges times the mean per-frame spatial IoU over the frames of
    the temporal overlap; a frame of the overlap where one tube has no box (tubes with holes)
    counts as IoU 0.

    Args:
        frames_a: (n_a,) strictly increasing frame numbers of tube a.
        boxes_a: (n_a, 4) its continuous pixel xyxy boxes.
        frames_b: (n_b,) frame numbers of tube b.
        boxes_b: (n_b, 4) its boxes.

    Returns:
        ST-IoU in [0, 1].
    """
    t_iou = temporal_iou(frames_a, frames_b)
    if t_iou == 0.0:
        return 0.0
    lo = max(int(frames_a[0]), int(frames_b[0]))
    hi = min(int(frames_a[-1]), int(frames_b[-1]))
    common, ia, ib = np.intersect1d(frames_a, frames_b, assume_unique=True,
                                    return_indices=True)
    sel = (common >= lo) & (common <= hi)
    ious = paired_iou(np.asarray(boxes_a, np.float64)[ia[sel]],
                      np.asarray(boxes_b, np.float64)[ib[sel]])
    return t_iou * float(ious.sum()) / (hi - lo + 1)
