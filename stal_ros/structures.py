# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Plain values passed between pipeline stages (numpy only, no torch, no ROS).

``Clip`` (① frame buffer → ② detector), ``Detections`` (⑥ detector → ⑦ tube linker),
``Tube`` and ``LinkerStep`` (⑦ tube linker → messages, evaluation).
Box format everywhere inside stal_ros: continuous absolute pixel ``xyxy`` float32 in the
source image (a box (0, 0, 10, 10) covers exactly 10 x 10 pixels).
Letters: T frames, D detections, C foreground classes (background excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

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


@dataclass(frozen=True)
class Clip:
    """K consecutive frames of one camera, oldest first.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        stamps_ns: (T,) int64 stamps in nanoseconds, increasing; a frame repeated to fill the
            clip at an end of its stream (``FramesConfig.pad``) repeats its stamp.
        target_index: index in ``frames`` of the frame to localise.
        target_stamp_ns: ``stamps_ns[target_index]``, the stamp results are reported under.
    """

    frames: np.ndarray
    stamps_ns: np.ndarray
    target_index: int
    target_stamp_ns: int

    @property
    def target_frame(self) -> np.ndarray:
        """(H, W, 3) uint8 frame to localise."""
        return self.frames[self.target_index]


@dataclass(frozen=True, eq=False)
class Tube:
    """Snapshot of one action tube (a ROAD path) of one class (⑦ tube linker → ROS, evaluation).

    Attributes:
        tube_id: unique in the process, stable while the tube lives (``<prefix><number>``).
        label: foreground class index in [0, C).
        score: mean of the observed box scores over the whole life (gap fills excluded).
        state: 'active' or 'finished'.
        start_stamp_ns, last_stamp_ns: stamps of the first and last observed frames.
        start_frame, last_frame: the same as linker frame indices.
        num_observed: frames with a detection (the rest of ``length`` are gap fills).
        stamps_ns: (n,) int64 stamps of the last n = min(length, H) frames
            (H = ``tubes.max_history``).
        frame_indices: (n,) int64 linker frame indices of those frames (contiguous).
        boxes: (n, 4) float32 pixel xyxy.
        scores: (n,) float32 box scores (a gap fill repeats the last observed score).
        observed: (n,) bool, False for gap-filled frames.

    The arrays are read-only.
    """

    tube_id: str
    label: int
    score: float
    state: str
    start_stamp_ns: int
    last_stamp_ns: int
    start_frame: int
    last_frame: int
    num_observed: int
    stamps_ns: np.ndarray
    frame_indices: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    observed: np.ndarray

    @property
    def length(self) -> int:
        """Frames from the first to the last observation, gap fills included."""
        return self.last_frame - self.start_frame + 1


class DeferredTubes(Protocol):
    """Tubes whose ``Tube`` snapshots are built when asked for (costlier than the linking)."""

    def __len__(self) -> int:
        """Return the number of tubes."""

    def tubes(self) -> list[Tube]:
        """Build the snapshots."""


class LinkerStep:
    """What one tube-linker ``update()`` reports.

    Attributes:
        frame_index: index of the frame in the stream (0 after construction or ``reset()``).
        stamp_ns: the frame's stamp.
        num_active: number of tubes in ``active``.
        num_finished: number of tubes in ``finished``.
        finished: tubes that finished at this frame, each reported exactly once in the life of
            the linker (tubes that never reached ``tubes.min_publish_length`` are dropped).
        active: the live tubes of at least ``tubes.min_publish_length`` frames.

    The linker may pass either list as ``DeferredTubes``, built on first access.  The
    ``OnlineTubeLinker`` copies ``finished`` out at once (it stays valid) but reads ``active``
    from its live state: read it before the next ``update()``, which invalidates it (reading
    it later raises RuntimeError).
    """

    __slots__ = ('frame_index', 'stamp_ns', 'num_active', 'num_finished', '_finished',
                 '_active')

    def __init__(self, frame_index: int, stamp_ns: int,
                 finished: Sequence[Tube] | DeferredTubes = (),
                 active: Sequence[Tube] | DeferredTubes = ()) -> None:
        self.frame_index = frame_index
        self.stamp_ns = stamp_ns
        self.num_active = len(active)
        self.num_finished = len(finished)
        self._finished = finished
        self._active = active

    @property
    def finished(self) -> list[Tube]:
        """Tubes that finished at this frame."""
        if not isinstance(self._finished, list):
            self._finished = _built(self._finished)
        return self._finished

    @property
    def active(self) -> list[Tube]:
        """Live tubes after this frame."""
        if not isinstance(self._active, list):
            self._active = _built(self._active)
        return self._active


def _built(tubes: Sequence[Tube] | DeferredTubes) -> list[Tube]:
    return tubes.tubes() if hasattr(tubes, 'tubes') else list(tubes)
