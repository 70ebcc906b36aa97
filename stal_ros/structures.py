# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Plain data passed between pipeline stages (numpy only, no torch, no ROS).

Box format everywhere inside stal_ros: absolute pixel ``xyxy`` float32 in the source image.
Letters: D detections, C foreground classes (background excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_array(name: str, value: object, dtype: type) -> np.ndarray:
    try:
        return np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f'Detections.{name}: expected an array convertible to '
                        f'{np.dtype(dtype).name}, got {type(value).__name__}') from exc


@dataclass(frozen=True)
class Detections:
    """Detections of one frame.

    Attributes:
        boxes: (D, 4) float32 pixel xyxy, x2 >= x1 and y2 >= y1.
        scores: (D,) float32 in [0, 1], the score of ``labels``.
        labels: (D,) int64 foreground class index in [0, C).
        class_scores: (D, C) float32 softmax scores of every foreground class for the box
            (needed by the ``scrSim`` edge cost), or None when the producer has none.

    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _as_array('boxes', self.boxes, np.float32)
        scores = _as_array('scores', self.scores, np.float32)
        labels = _as_array('labels', self.labels, np.int64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f'Detections.boxes: expected shape (D, 4), got {boxes.shape}')
        d = boxes.shape[0]
        for name, arr in (('scores', scores), ('labels', labels)):
            if arr.shape != (d,):
                raise ValueError(f'Detections.{name}: expected shape ({d},) to match boxes, '
                                 f'got {arr.shape}')
        if not np.all(np.isfinite(boxes)):
            raise ValueError('Detections.boxes: expected finite coordinates, got NaN/inf')
        if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            bad = int(np.flatnonzero((boxes[:, 2] < boxes[:, 0]) |
                                     (boxes[:, 3] < boxes[:, 1]))[0])
            raise ValueError(f'Detections.boxes[{bad}] = {boxes[bad].tolist()}: expected '
                             'x2 >= x1 and y2 >= y1')
        if d and (not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1):
            raise ValueError('Detections.scores: expected finite values in [0, 1], got '
                             f'min {scores.min()} max {scores.max()}')
        if d and labels.min() < 0:
            raise ValueError(f'Detections.labels: expected indices >= 0, got {labels.min()}')
        object.__setattr__(self, 'boxes', boxes)
        object.__setattr__(self, 'scores', scores)
        object.__setattr__(self, 'labels', labels)
        if self.class_scores is not None:
            cs = _as_array('class_scores', self.class_scores, np.float32)
            if cs.ndim != 2 or cs.shape[0] != d:
                raise ValueError(f'Detections.class_scores: expected shape ({d}, C), '
                                 f'got {cs.shape}')
            if d and labels.max() >= cs.shape[1]:
                raise ValueError(f'Detections.labels: max {labels.max()} is not a column of '
                                 f'class_scores with {cs.shape[1]} classes')
            object.__setattr__(self, 'class_scores', cs)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, num_classes: int | None = None) -> 'Detections':
        """Return detections of a frame with nothing in it."""
        cs = None if num_classes is None else np.zeros((0, num_classes), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros(0, np.int64), cs)
