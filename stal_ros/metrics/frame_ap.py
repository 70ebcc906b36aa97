# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Frame-AP and frame-mAP (paper §4, Table 1-3 'F-mAP').

Per class, all detections of the class over the split are sorted by score (best first; ties
keep their input order).  A detection is a true positive if, among the ground-truth boxes of
its class in the same frame that no better detection has matched yet, the one with the highest
IoU (continuous boxes) reaches the threshold (``>=``, both protocols); that box is then
matched.  Otherwise it is
a false positive (so are duplicates of an already matched box, and every detection in a frame
without ground truth of its class).  Letters: K classes, D detections.
"""

from __future__ import annotations

import numpy as np

from stal_ros.geometry import box_iou
from stal_ros.metrics.annotations import FrameDetections, GroundTruth
from stal_ros.metrics.ap import (APResult, check_protocol, check_threshold, class_ap,
                                 DEFAULT_PROTOCOL)


def _frame_keys(video_ids: np.ndarray, frames: np.ndarray) -> np.ndarray:
    return video_ids.astype(np.int64) * (1 << 32) + (frames - np.iinfo(np.int32).min)


def _detection_keys(gt: GroundTruth,
                    detections: FrameDetections) -> tuple[dict[str, int], np.ndarray]:
    """Check the detections against the split; return {video: index} and (D,) frame keys."""
    if not isinstance(detections, FrameDetections):
        raise TypeError(f'detections: expected FrameDetections, got '
                        f'{type(detections).__name__}')
    vid_of = {v: i for i, v in enumerate(gt.videos)}
    unknown = set(detections.videos.tolist()) - set(vid_of)
    if unknown:
        raise ValueError(f'detections: video {sorted(unknown)[0]!r} is not in the ground truth')
    det_vid = np.array([vid_of[v] for v in detections.videos.tolist()], np.int64)
    return vid_of, _frame_keys(det_vid, detections.frames)


def match_frame(det_boxes: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """True-positive flags of one frame's detections of one class.

    Args:
        det_boxes: (D, 4) detections sorted by score, best first.
        gt_boxes: (G, 4) ground-truth boxes of the class in that frame.
        iou_threshold: IoU a match must reach.

    Returns:
        (D,) bool.
    """
    tp = np.zeros(det_boxes.shape[0], bool)
    if gt_boxes.shape[0] == 0:
        return tp
    iou = box_iou(np.asarray(det_boxes, np.float64), np.asarray(gt_boxes, np.float64))
    free = np.ones(gt_boxes.shape[0], bool)
    for i in range(det_boxes.shape[0]):
        if not free.any():
            break
        row = np.where(free, iou[i], -1.0)
        j = int(row.argmax())
        if row[j] >= iou_threshold:
            tp[i] = True
            free[j] = False
    return tp


def frame_ap(gt: GroundTruth, detections: FrameDetections, iou_threshold: float = 0.5,
             protocol: str = DEFAULT_PROTOCOL) -> APResult:
    """Frame-AP of every class and their mean.

    Args:
        gt: ground truth of the split; every detection's video must be in it.
        detections: frame-level detections (D rows).
        iou_threshold: spatial IoU for a match (0.5 in the paper).
        protocol: 'road' (default, VOC all-points AP) or 'act' (trapezoidal AP).

    Returns:
        ``APResult`` with K classes; ``mean_ap`` is the frame-mAP.
    """
    check_protocol(protocol)
    iou_threshold = check_threshold('iou_threshold', iou_threshold)
    vid_of, det_key = _detection_keys(gt, detections)
    if len(detections) and detections.labels.max() >= gt.num_classes:
        raise ValueError(f'detections.labels: expected < num_classes = {gt.num_classes}, got '
                         f'{detections.labels.max()}')
    classes = []
    for k in range(gt.num_classes):
        # Ground-truth boxes of class k by frame key.
        gt_boxes: dict[int, list[np.ndarray]] = {}
        num_gt = 0
        for tube in gt.tubes(k):
            keys = _frame_keys(np.full(tube.frames.size, vid_of[tube.video]), tube.frames)
            for key, box in zip(keys.tolist(), tube.boxes):
                gt_boxes.setdefault(key, []).append(box)
            num_gt += tube.frames.size
        sel = np.flatnonzero(detections.labels == k)
        sel = sel[np.argsort(-detections.scores[sel], kind='stable')]
        tp = np.zeros(sel.size, bool)
        keys = det_key[sel]
        in_gt = np.isin(keys, np.fromiter(gt_boxes, np.int64, len(gt_boxes)))
        # TP/FP of a detection only depends on better detections of the same frame, so each
        # frame with ground truth is matched on its own (in score order).
        pos = np.flatnonzero(in_gt)
        if pos.size:
            order = np.argsort(keys[pos], kind='stable')
            pos = pos[order]
            bounds = np.flatnonzero(np.diff(keys[pos])) + 1
            for group in np.split(pos, bounds):
                g = np.asarray(gt_boxes[int(keys[group[0]])])
                tp[group] = match_frame(detections.boxes[sel[group]], g, iou_threshold)
        classes.append(class_ap(k, gt.class_names[k], detections.scores[sel], tp, num_gt,
                                protocol))
    return APResult('frame-AP', protocol, iou_threshold, tuple(classes))


def frame_confusion(gt: GroundTruth, detections: FrameDetections,
                    iou_threshold: float = 0.5) -> np.ndarray:
    """Which class the detector gives each true box: the confusions behind a low frame-AP.

    For every ground-truth box, the detections of any class in its frame that overlap it with
    IoU >= ``iou_threshold`` are found; the box counts for the class of the best-scoring one,
    or as missed when there is none.

    Args:
        gt: ground truth of the split (K classes); every detection's video must be in it.
        detections: frame-level detections (D rows).
        iou_threshold: spatial IoU of an overlap.

    Returns:
        (K, K + 1) int64 counts: row = true class, column = class given (column K: missed).
        Each row sums to the number of true boxes of its class.
    """
    iou_threshold = check_threshold('iou_threshold', iou_threshold)
    vid_of, det_key = _detection_keys(gt, detections)
    order = np.argsort(det_key, kind='stable')
    sorted_keys = det_key[order]
    counts = np.zeros((gt.num_classes, gt.num_classes + 1), np.int64)
    for tube in gt.tubes():
        keys = _frame_keys(np.full(tube.frames.size, vid_of[tube.video]), tube.frames)
        first = np.searchsorted(sorted_keys, keys, 'left')
        last = np.searchsorted(sorted_keys, keys, 'right')
        for a, b, box in zip(first.tolist(), last.tolist(), tube.boxes):
            given = gt.num_classes
            if b > a:
                rows = order[a:b]
                iou = box_iou(np.asarray(detections.boxes[rows], np.float64),
                              np.asarray(box, np.float64)[None])[:, 0]
                overlapping = rows[iou >= iou_threshold]
                if overlapping.size:
                    given = int(detections.labels[overlapping[
                        np.argmax(detections.scores[overlapping])]])
            counts[tube.label, given] += 1
    return counts
