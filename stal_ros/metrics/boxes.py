# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Box and tube overlaps of the evaluation protocols (inclusive pixel boxes).

UCF101-24 and JHMDB annotations are inclusive pixel boxes: the box (x1, y1, x2, y2) covers
x2 - x1 + 1 columns, and both ROAD's MATLAB and ACT's Python evaluation measure IoU that way,
so the metrics do too (the online linker uses the continuous IoU, which is what matters
there).  Letters: M, N boxes; n frames of a tube.
"""

from __future__ import annotations

import numpy as np


def box_iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the IoU of every pair of inclusive pixel boxes.

    Args:
        a: (M, 4) xyxy.
        b: (N, 4) xyxy.

    Returns:
        (M, N) float64 IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def paired_iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the IoU of a[i] with b[i] for each i (inclusive pixel boxes).

    Args:
        a: (n, 4) xyxy.
        b: (n, 4) xyxy.

    Returns:
        (n,) float64 IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
             + (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1) - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


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
    """Spatio-temporal IoU of two tubes (ROAD / ACT ``iou3dt``).

    Temporal IoU of the inclusive frame ranges times the mean per-frame spatial IoU over the
    frames of the temporal overlap; a frame of the overlap where one tube has no box (tubes
    with holes) counts as IoU 0.

    Args:
        frames_a: (n_a,) strictly increasing frame numbers of tube a.
        boxes_a: (n_a, 4) its xyxy inclusive pixel boxes.
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
    ious = paired_iou_inclusive(np.asarray(boxes_a)[ia[sel]], np.asarray(boxes_b)[ib[sel]])
    return t_iou * float(ious.sum()) / (hi - lo + 1)
