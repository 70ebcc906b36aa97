# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""How far a split resolves a mAP: the bootstrap over its videos (Efron 1979).

A split of V videos is one sample of the videos the benchmark could have drawn.  Drawing V of
its videos with replacement, many times, and scoring each draw (a video drawn twice counts
twice, under two names) shows how much frame-mAP and video-mAP move with the choice of
videos: their standard deviation and a percentile interval.  Two models whose mAPs differ by
much less than that standard deviation are not told apart by the split.  Each video keeps its
own detections and tubes, so the detector runs once; only the scoring repeats.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from stal_ros.metrics.annotations import (DetectedTube, FrameDetections, GroundTruth,
                                          VideoAnnotations)
from stal_ros.metrics.frame_ap import frame_ap
from stal_ros.metrics.video_ap import video_ap

__all__ = ['BootstrapInterval', 'bootstrap_map']


@dataclass(frozen=True)
class BootstrapInterval:
    """One metric's bootstrap.

    Attributes:
        value: the metric on the whole split.
        samples: (B,) the metric on each draw.
        level: the interval's coverage (0.95: the 2.5th to 97.5th percentile).
    """

    value: float
    samples: np.ndarray
    level: float

    @property
    def sd(self) -> float:
        """Standard deviation of the draws."""
        return float(np.std(self.samples))

    @property
    def low(self) -> float:
        """Lower end of the percentile interval."""
        return float(np.percentile(self.samples, 50 * (1 - self.level)))

    @property
    def high(self) -> float:
        """Upper end of the percentile interval."""
        return float(np.percentile(self.samples, 50 * (1 + self.level)))

    def to_dict(self) -> dict[str, float]:
        """Return value, sd, low and high (JSON-ready)."""
        return {'value': self.value, 'sd': self.sd, 'low': self.low, 'high': self.high}


def _rename(gt: GroundTruth, detections: FrameDetections, rows: dict[str, np.ndarray],
            tubes_of: dict[str, list[DetectedTube]], pick: Sequence[str]
            ) -> tuple[GroundTruth, FrameDetections, list[DetectedTube]]:
    """Return the ground truth, detections and tubes of the videos ``pick``.

    The j-th is renamed ``'<j>:<name>'``, so that a video drawn twice counts twice; ``rows``
    holds each video's rows of ``detections``.
    """
    videos, parts, tubes = [], [], []
    for j, name in enumerate(pick):
        new = f'{j}:{name}'
        va = gt.videos[name]
        videos.append(VideoAnnotations(new, va.num_frames,
                                       tuple(replace(t, video=new) for t in va.tubes)))
        idx = rows.get(name, np.zeros(0, np.int64))
        parts.append(FrameDetections([new] * idx.size, detections.frames[idx],
                                     detections.labels[idx], detections.scores[idx],
                                     detections.boxes[idx]))
        tubes += [replace(t, video=new) for t in tubes_of.get(name, [])]
    return (GroundTruth(videos, gt.num_classes, gt.class_names),
            FrameDetections.concatenate(parts), tubes)


def bootstrap_map(gt: GroundTruth, detections: FrameDetections, tubes: Sequence[DetectedTube],
                  *, draws: int, seed: int = 0, iou: float = 0.5, video_iou: float = 0.5,
                  level: float = 0.95) -> dict[str, BootstrapInterval]:
    """Bootstrap frame-mAP@``iou`` and video-mAP@``video_iou`` over the split's videos.

    Args:
        gt: the split's ground truth (V videos).
        detections: every per-frame detection of the split (as for ``frame_ap``).
        tubes: every detected tube of the split (as for ``video_ap``).
        draws: B, the resampled splits (each of V videos drawn with replacement).
        seed: seed of the draws (the same seed gives the same draws).
        iou: frame-AP IoU threshold.
        video_iou: video-AP spatio-temporal IoU threshold.
        level: coverage of the percentile interval, in (0, 1).

    Returns:
        ``{'frame_map': ..., 'video_map': ...}``.

    Raises:
        ValueError: ``draws`` < 1, ``level`` outside (0, 1) or a split without videos.
    """
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f'bootstrap_map: draws: expected an int >= 1, got {draws!r}')
    if not 0.0 < level < 1.0:
        raise ValueError(f'bootstrap_map: level: expected a value in (0, 1), got {level!r}')
    names = list(gt.videos)
    if not names:
        raise ValueError('bootstrap_map: expected a ground truth with videos, got none')
    tubes_of: dict[str, list[DetectedTube]] = defaultdict(list)
    for tube in tubes:
        tubes_of[tube.video].append(tube)
    order = np.argsort(detections.videos.astype(str), kind='stable')
    keys, starts = np.unique(detections.videos[order].astype(str), return_index=True)
    rows = dict(zip(keys, np.split(order, starts[1:])))

    def score(g: GroundTruth, d: FrameDetections, t: list[DetectedTube]) -> tuple[float, float]:
        return (frame_ap(g, d, iou).mean_ap,
                video_ap(g, t, (video_iou,)).mean_ap(video_iou))

    whole = score(gt, detections, list(tubes))
    rng = np.random.default_rng(seed)
    samples = np.zeros((int(draws), 2))                                  # (B, 2)
    for b in range(int(draws)):
        pick = [names[i] for i in rng.integers(0, len(names), len(names))]
        samples[b] = score(*_rename(gt, detections, rows, tubes_of, pick))
    return {'frame_map': BootstrapInterval(whole[0], samples[:, 0], level),
            'video_map': BootstrapInterval(whole[1], samples[:, 1], level)}
