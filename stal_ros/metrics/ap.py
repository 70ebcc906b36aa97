# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Average precision under the two public protocols, and the result tables.

- ``'road'`` (default): ROAD's MATLAB evaluation calls ``xVOCap`` of the PASCAL VOC 2011
  devkit: all-points interpolated AP, precision made monotone from the right and summed over
  the recall steps.
- ``'act'``: ACT/MOC's ``pr_to_ap``: trapezoidal area under the raw precision-recall curve
  that starts at (recall 0, precision 1).

A class without ground truth has no defined AP (NaN) and is left out of the mean; a class with
ground truth and no detection has AP 0.  Letters: K classes, D detections of a class.

What each protocol does, checked against the sources (ROAD: gurkirt/realtime-action-detection
``online-tubes/frameAp.m``, ``eval/get_PR_curve.m``, ``eval/compute_spatio_temporal_iou.m``,
``eval/xVOCap.m``; ACT: ``ACT_utils.py``/``ACT.py``), and the differences kept:

============================  ==========================  ==========================
                              'road'                      'act'
============================  ==========================  ==========================
frame TP                      IoU >= threshold            IoU >= threshold
video TP                      ST-IoU > threshold          ST-IoU >= threshold
AP                            VOC all-points              trapezoid from (0, 1)
tube NMS before video-AP      none                        0.3
============================  ==========================  ==========================

Kept differences from both: boxes are continuous (ROAD added 1 to the width and height of its
own inclusive detections, ACT to both boxes; converting inclusive annotations once and
keeping every box continuous gives a perfect detection IoU 1); ties in score keep their input
order (MATLAB's ``sort`` does; ACT's ``argsort`` does not guarantee it); scores are not cast to
float32 (ROAD's are); a class without ground truth is left out of the mean (ROAD sets its AP
to 0 and averages over all classes; on UCF101-24's test split every class has ground truth);
ROAD's integer overflow of ``uint8`` frame numbers beyond 255 is not reproduced, nor is its
ST-IoU of 0 for tubes sharing exactly one frame (``overlap``).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

PROTOCOLS = {
    'road': 'ROAD / PASCAL VOC all-points interpolated AP (xVOCap)',
    'act': 'ACT trapezoidal AP under the raw precision-recall curve (pr_to_ap)',
}
DEFAULT_PROTOCOL = 'road'


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if known, else raise ValueError naming the choices."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'protocol: expected one of {sorted(PROTOCOLS)}, got {protocol!r}')
    return protocol


def check_threshold(name: str, value: float) -> float:
    """Return an IoU threshold in (0, 1] as float, else raise ValueError."""
    value = float(value)
    if not (0.0 < value <= 1.0):
        raise ValueError(f'{name}: expected a value in (0, 1], got {value}')
    return value


def precision_recall(tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection.

    Args:
        tp: (D,) bool, True positive flags of a class's detections sorted by score (best first).
        num_gt: ground-truth instances of the class (> 0).

    Returns:
        precision (D,), recall (D,) float64.
    """
    tp = np.asarray(tp, bool)
    ctp = np.cumsum(tp, dtype=np.float64)
    precision = ctp / np.arange(1, tp.size + 1)
    recall = ctp / num_gt
    return precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray, protocol: str) -> float:
    """AP of a precision-recall curve (points after each detection, recall non-decreasing).

    Args:
        precision: (D,) precision after each detection.
        recall: (D,) recall after each detection.
        protocol: 'road' (VOC all-points interpolated) or 'act' (trapezoid from (0, 1)).

    Returns:
        AP in [0, 1] (0 for an empty curve).
    """
    check_protocol(protocol)
    p = np.asarray(precision, np.float64)
    r = np.asarray(recall, np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise ValueError(f'precision, recall: expected equal 1-D shapes, got {p.shape}, '
                         f'{r.shape}')
    if protocol == 'road':
        mrec = np.concatenate(([0.0], r, [1.0]))
        mpre = np.concatenate(([0.0], p, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
        return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))
    pr = np.concatenate(([1.0], p))
    rc = np.concatenate(([0.0], r))
    return float(np.sum((rc[1:] - rc[:-1]) * (pr[1:] + pr[:-1]) * 0.5))


@dataclass(frozen=True, eq=False)
class ClassAP:
    """AP of one class with its precision-recall curve (for plots).

    Attributes:
        label, name: the class.
        ap: AP in [0, 1], NaN when the class has no ground truth.
        num_gt: ground-truth instances (boxes for frame-AP, tubes for video-AP).
        num_det: detections of the class.
        num_tp: true positives among them.
        scores: (D,) detection scores, best first.
        precision: (D,) precision after each detection.
        recall: (D,) recall after each detection (NaN when num_gt is 0).
    """

    label: int
    name: str
    ap: float
    num_gt: int
    num_det: int
    num_tp: int
    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def class_ap(label: int, name: str, scores: np.ndarray, tp: np.ndarray, num_gt: int,
             protocol: str) -> ClassAP:
    """Build the ``ClassAP`` of detections already sorted by score with their TP flags."""
    scores = np.asarray(scores, np.float64)
    tp = np.asarray(tp, bool)
    if num_gt == 0:
        ctp = np.cumsum(tp, dtype=np.float64)
        precision = ctp / np.arange(1, tp.size + 1)
        recall = np.full(tp.size, np.nan)
        ap = math.nan
    else:
        precision, recall = precision_recall(tp, num_gt)
        ap = average_precision(precision, recall, protocol)
    return ClassAP(label, name, ap, int(num_gt), int(tp.size), int(tp.sum()), scores,
                   precision, recall)


@dataclass(frozen=True, eq=False)
class APResult:
    """Per-class AP at one IoU threshold.

    Attributes:
        metric: 'frame-AP' or 'video-AP'.
        protocol: the protocol key ('road' or 'act'); ``PROTOCOLS`` describes it.
        iou_threshold: IoU (frame) or ST-IoU (video) threshold.
        classes: K ``ClassAP``.
    """

    metric: str
    protocol: str
    iou_threshold: float
    classes: tuple[ClassAP, ...]

    @property
    def ap(self) -> np.ndarray:
        """(K,) AP per class, NaN where a class has no ground truth."""
        return np.array([c.ap for c in self.classes], np.float64)

    @property
    def mean_ap(self) -> float:
        """Mean AP over the classes with ground truth (NaN if none has)."""
        ap = self.ap
        ap = ap[~np.isnan(ap)]
        return float(ap.mean()) if ap.size else math.nan

    def format_table(self) -> str:
        """Per-class text table, the protocol named in the header."""
        lines = [f'{self.metric} @ IoU {self.iou_threshold:g}, protocol {self.protocol}: '
                 f'{PROTOCOLS[self.protocol]}',
                 f'{"class":<28} {"AP":>7} {"GT":>7} {"det":>8} {"TP":>7}']
        for c in self.classes:
            lines.append(f'{c.name[:28]:<28} {_pct(c.ap):>7} {c.num_gt:>7} {c.num_det:>8} '
                         f'{c.num_tp:>7}')
        lines.append(f'{"mean":<28} {_pct(self.mean_ap):>7}')
        return '\n'.join(lines)


def _pct(value: float) -> str:
    return 'n/a' if math.isnan(value) else f'{100 * value:.2f}'
