# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Video-AP and video-mAP (paper §4, 'V-mAP' at 0.2, 0.5, 0.75 and 0.5:0.95).

Per class, the detected tubes are sorted by score (best first, ties in input order; with the
ACT protocol a per-video tube NMS at ST-IoU 0.3 comes first).  A tube is a true positive if,
among the ground-truth tubes of its class in the same video not matched by a better tube, the
one with the highest spatio-temporal IoU passes the threshold (ROAD: ``>``, ACT: ``>=``, see
``ap``); that tube is then matched.  Thresholds are used exactly as given (0.125 stays 0.125).
Letters: K classes, T thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

import numpy as np

from stal_ros.metrics.annotations import DetectedTube, GroundTruth
from stal_ros.metrics.ap import (APResult, check_protocol, check_threshold, class_ap,
                                 DEFAULT_PROTOCOL, PROTOCOLS)
from stal_ros.metrics.overlap import spatio_temporal_iou

COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
DEFAULT_THRESHOLDS = (0.2,) + COCO_THRESHOLDS
ACT_TUBE_NMS = 0.3
_AUTO = 'auto'


def tube_iou(a: DetectedTube, b: DetectedTube) -> float:
    """Spatio-temporal IoU of two tubes (either kind: anything with frames and boxes)."""
    return spatio_temporal_iou(a.frames, a.boxes, b.frames, b.boxes)


def tube_nms(tubes: Sequence[DetectedTube], iou_threshold: float) -> list[DetectedTube]:
    """Greedy NMS of tubes by score: drop a tube whose ST-IoU with a kept better one is above.

    Tubes of different videos or classes never suppress each other.  Returns the kept tubes,
    best first (ACT's ``nms3dt``).
    """
    order = sorted(range(len(tubes)), key=lambda i: -tubes[i].score)
    kept: list[DetectedTube] = []
    for i in order:
        t = tubes[i]
        if all(k.video != t.video or k.label != t.label
               or tube_iou(k, t) <= iou_threshold for k in kept):
            kept.append(t)
    return kept


def _match(ious: list[tuple[str, np.ndarray]], threshold: float, strict: bool) -> np.ndarray:
    """TP flags of tubes in score order; ious[i] (G_v,) against their video's GT tubes.

    ``strict``: a match needs ST-IoU > threshold (ROAD), else >= (ACT).
    """
    used: dict[str, np.ndarray] = {}
    tp = np.zeros(len(ious), bool)
    for i, (video, row) in enumerate(ious):
        if row.size == 0:
            continue
        free = used.setdefault(video, np.ones(row.size, bool))
        masked = np.where(free, row, -1.0)
        j = int(masked.argmax())
        if masked[j] > threshold or (not strict and masked[j] == threshold):
            tp[i] = True
            free[j] = False
    return tp


@dataclass(frozen=True, eq=False)
class VideoAPResult:
    """Video-AP per class at several ST-IoU thresholds.

    Attributes:
        protocol: 'road' or 'act'.
        tube_nms_iou: ST-IoU of the tube NMS applied first, or None.
        results: threshold (exactly as given) -> ``APResult``.
    """

    protocol: str
    tube_nms_iou: float | None
    results: dict[float, APResult]

    def result(self, threshold: float) -> APResult:
        """Return the ``APResult`` at ``threshold`` (matched to a computed one within 1e-9)."""
        for t, res in self.results.items():
            if math.isclose(t, float(threshold), rel_tol=0.0, abs_tol=1e-9):
                return res
        raise KeyError(f'video-AP: threshold {threshold} was not computed; computed: '
                       f'{sorted(self.results)}')

    def mean_ap(self, threshold: float) -> float:
        """Video-mAP at one threshold."""
        return self.result(threshold).mean_ap

    @property
    def mean_ap_coco(self) -> float:
        """Mean of the video-mAP over 0.5:0.05:0.95 (NaN if not all were computed)."""
        if not self._has_coco():
            return math.nan
        return float(np.mean([self.result(t).mean_ap for t in COCO_THRESHOLDS]))

    def _has_coco(self) -> bool:
        return all(any(math.isclose(t, c, abs_tol=1e-9) for t in self.results)
                   for c in COCO_THRESHOLDS)

    def class_ap_coco(self) -> np.ndarray:
        """(K,) per-class AP averaged over 0.5:0.05:0.95 (NaN if not all were computed)."""
        if not self._has_coco():
            k = len(next(iter(self.results.values())).classes)
            return np.full(k, math.nan)
        return np.mean([self.result(t).ap for t in COCO_THRESHOLDS], axis=0)

    def format_table(self) -> str:
        """Per-class table: AP at 0.2, 0.5, 0.75 (those computed) and 0.5:0.95."""
        shown = [t for t in self.results
                 if any(math.isclose(t, c, abs_tol=1e-9) for c in (0.2, 0.5, 0.75))]
        any_result = next(iter(self.results.values()))
        nms = 'none' if self.tube_nms_iou is None else f'{self.tube_nms_iou:g}'
        head = ''.join(f'{"@" + format(t, "g"):>9}' for t in shown) + f'{"@.5:.95":>9}'
        lines = [f'video-AP, protocol {self.protocol}: {PROTOCOLS[self.protocol]}; tube NMS '
                 f'{nms}', f'{"class":<28}{head}{"GT":>6}{"det":>7}']
        coco = self.class_ap_coco()
        for k, c in enumerate(any_result.classes):
            cells = ''.join(f'{_pct(self.results[t].classes[k].ap):>9}' for t in shown)
            lines.append(f'{c.name[:28]:<28}{cells}{_pct(coco[k]):>9}{c.num_gt:>6}'
                         f'{c.num_det:>7}')
        cells = ''.join(f'{_pct(self.results[t].mean_ap):>9}' for t in shown)
        lines.append(f'{"mean":<28}{cells}{_pct(self.mean_ap_coco):>9}')
        return '\n'.join(lines)


def _pct(value: float) -> str:
    return 'n/a' if math.isnan(value) else f'{100 * value:.2f}'


def video_ap(gt: GroundTruth, tubes: Sequence[DetectedTube],
             thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
             protocol: str = DEFAULT_PROTOCOL,
             tube_nms_iou: float | None | str = _AUTO) -> VideoAPResult:
    """Video-AP of every class at each ST-IoU threshold.

    Args:
        gt: ground truth of the split; every tube's video must be in it.
        tubes: detected tubes (any videos and classes of the split).
        thresholds: ST-IoU thresholds (default 0.2 and 0.5:0.05:0.95).
        protocol: 'road' (default, VOC all-points AP) or 'act' (trapezoidal AP).
        tube_nms_iou: ST-IoU of a tube NMS applied first; 'auto' = 0.3 for 'act' (as ACT
            does), none for 'road'; None disables it.

    Raises:
        ValueError: a threshold outside (0, 1], given twice, or none; an unknown protocol;
            a tube of a video or class the ground truth does not have.

    Returns:
        ``VideoAPResult``.
    """
    check_protocol(protocol)
    ths = sorted(check_threshold('thresholds', t) for t in thresholds)
    if not ths:
        raise ValueError('thresholds: expected at least one threshold')
    if len(set(ths)) != len(ths):
        raise ValueError(f'thresholds: expected distinct values, got {list(thresholds)}')
    if tube_nms_iou == _AUTO:
        tube_nms_iou = ACT_TUBE_NMS if protocol == 'act' else None
    elif tube_nms_iou is not None:
        tube_nms_iou = check_threshold('tube_nms_iou', tube_nms_iou)
    tubes = list(tubes)
    for t in tubes:
        if not isinstance(t, DetectedTube):
            raise TypeError(f'tubes: expected DetectedTube, got {type(t).__name__}')
        gt.check_video('tubes', t.video)
        if t.label >= gt.num_classes:
            raise ValueError(f'tubes: label {t.label} of a tube in {t.video!r}, expected < '
                             f'num_classes = {gt.num_classes}')
    per_class: dict[float, list] = {t: [] for t in ths}
    for k in range(gt.num_classes):
        gts: dict[str, list] = {}
        for g in gt.tubes(k):
            gts.setdefault(g.video, []).append(g)
        dets = [t for t in tubes if t.label == k]
        if tube_nms_iou is not None:
            dets = tube_nms(dets, tube_nms_iou)
        dets = [dets[i] for i in np.argsort([-d.score for d in dets], kind='stable')]
        ious = [(d.video, np.array([tube_iou(g, d) for g in gts.get(d.video, [])]))
                for d in dets]
        scores = np.array([d.score for d in dets], np.float64)
        num_gt = sum(len(v) for v in gts.values())
        for th in ths:
            tp = _match(ious, th, strict=protocol == 'road')
            per_class[th].append(class_ap(k, gt.class_names[k], scores, tp, num_gt, protocol))
    results = {th: APResult('video-AP', protocol, th, tuple(per_class[th])) for th in ths}
    return VideoAPResult(protocol, tube_nms_iou, results)
