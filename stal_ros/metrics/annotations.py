# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Ground truth and detections for the evaluation, shaped like UCF101-24 / JHMDB annotations.

A video has a number of frames and ground-truth tubes (class, frame numbers, one box per
frame).  Boxes are continuous pixel xyxy (the box (0, 0, 10, 10) covers 10 x 10 pixels), as
everywhere inside stal_ros.  UCF101-24 and JHMDB store tubes as ACT's ``gttubes[video][label]``
arrays of rows (frame, x1, y1, x2, y2) of INCLUSIVE pixel boxes (x2 - x1 + 1 columns, ACT's
``iou2d`` adds 1) and ``nframes[video]``; ``GroundTruth.from_act`` converts them, once.
Frame numbers are whatever the annotations use (1-based for those sets); they only have to
agree between ground truth and detections.  Letters: K classes, D detections, n frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from stal_ros.structures import Detections


def _check_boxes(where: str, boxes: np.ndarray, n: int) -> np.ndarray:
    try:
        boxes = np.asarray(boxes, np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f'{where}.boxes: expected numbers, got {type(boxes).__name__}') from exc
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.shape != (n, 4):
        raise ValueError(f'{where}.boxes: expected shape ({n}, 4), got {boxes.shape}')
    if not np.all(np.isfinite(boxes)):
        raise ValueError(f'{where}.boxes: expected finite coordinates, got NaN/inf')
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise ValueError(f'{where}.boxes[{bad[0]}] = {boxes[bad[0]].tolist()}: expected '
                         'x2 >= x1 and y2 >= y1')
    return boxes


def _check_frames(where: str, frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 1 or frames.size == 0:
        raise ValueError(f'{where}.frames: expected a non-empty 1-D array, got shape '
                         f'{frames.shape}')
    if not np.issubdtype(frames.dtype, np.integer):
        if not np.all(np.isfinite(frames)) or np.any(frames != np.round(frames)):
            raise ValueError(f'{where}.frames: expected integer frame numbers')
    frames = frames.astype(np.int64)
    if np.any(np.diff(frames) <= 0):
        raise ValueError(f'{where}.frames: expected strictly increasing frame numbers')
    return frames


def _check_label(where: str, label: object) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
        raise ValueError(f'{where}.label: expected an int >= 0, got {label!r}')
    return int(label)


def _check_score(where: str, score: object) -> float:
    try:
        value = float(score)
    except (TypeError, ValueError) as exc:
        raise TypeError(f'{where}.score: expected a number, got {type(score).__name__}') from exc
    if not np.isfinite(value) or value < 0:
        raise ValueError(f'{where}.score: expected a finite value >= 0, got {value}')
    return value


@dataclass(frozen=True, eq=False)
class GroundTruthTube:
    """One annotated action instance: class, frames and one box per frame.

    Attributes:
        video: video name.
        label: class index in [0, K).
        frames: (n,) int64 strictly increasing frame numbers.
        boxes: (n, 4) float64 continuous pixel xyxy.
    """

    video: str
    label: int
    frames: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        where = f'GroundTruthTube({self.video!r})'
        object.__setattr__(self, 'label', _check_label(where, self.label))
        frames = _check_frames(where, self.frames)
        object.__setattr__(self, 'frames', frames)
        object.__setattr__(self, 'boxes', _check_boxes(where, self.boxes, frames.size))


@dataclass(frozen=True, eq=False)
class DetectedTube:
    """One detected tube for video-AP (and trimming).

    Attributes:
        video: video name.
        label: class index in [0, K).
        score: ranking score, finite and >= 0.
        frames: (n,) int64 strictly increasing frame numbers.
        boxes: (n, 4) float64 continuous pixel xyxy.
        frame_scores: (n,) float64 per-frame scores (needed by the temporal trimming), or None.
    """

    video: str
    label: int
    score: float
    frames: np.ndarray
    boxes: np.ndarray
    frame_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f'DetectedTube({self.video!r})'
        object.__setattr__(self, 'label', _check_label(where, self.label))
        object.__setattr__(self, 'score', _check_score(where, self.score))
        frames = _check_frames(where, self.frames)
        object.__setattr__(self, 'frames', frames)
        object.__setattr__(self, 'boxes', _check_boxes(where, self.boxes, frames.size))
        if self.frame_scores is not None:
            fs = np.asarray(self.frame_scores, np.float64)
            if fs.shape != frames.shape:
                raise ValueError(f'{where}.frame_scores: expected shape {frames.shape}, got '
                                 f'{fs.shape}')
            if not np.all(np.isfinite(fs)) or np.any(fs < 0):
                raise ValueError(f'{where}.frame_scores: expected finite values >= 0')
            object.__setattr__(self, 'frame_scores', fs)


@dataclass(frozen=True)
class VideoAnnotations:
    """Annotations of one video: its length and its ground-truth tubes (any number)."""

    video: str
    num_frames: int
    tubes: tuple[GroundTruthTube, ...] = ()

    def __post_init__(self) -> None:
        n = self.num_frames
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f'VideoAnnotations({self.video!r}).num_frames: expected an int '
                             f'>= 0, got {self.num_frames!r}')
        tubes = tuple(self.tubes)
        for tube in tubes:
            if not isinstance(tube, GroundTruthTube):
                raise TypeError(f'VideoAnnotations({self.video!r}).tubes: expected '
                                f'GroundTruthTube, got {type(tube).__name__}')
            if tube.video != self.video:
                raise ValueError(f'VideoAnnotations({self.video!r}).tubes: a tube of video '
                                 f'{tube.video!r} is listed here')
        object.__setattr__(self, 'tubes', tubes)


class GroundTruth:
    """The ground truth of an evaluation split.

    Args:
        videos: annotations of every video of the split (names unique).
        num_classes: K.
        class_names: K names for the tables, or None for 'class <k>'.
    """

    def __init__(self, videos: Iterable[VideoAnnotations], num_classes: int,
                 class_names: Sequence[str] | None = None) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 1:
            raise ValueError(f'GroundTruth.num_classes: expected an int >= 1, got '
                             f'{num_classes!r}')
        self.num_classes = int(num_classes)
        self.videos: dict[str, VideoAnnotations] = {}
        for va in videos:
            if not isinstance(va, VideoAnnotations):
                raise TypeError(f'GroundTruth.videos: expected VideoAnnotations, got '
                                f'{type(va).__name__}')
            if va.video in self.videos:
                raise ValueError(f'GroundTruth.videos: video {va.video!r} listed twice')
            for tube in va.tubes:
                if tube.label >= self.num_classes:
                    raise ValueError(f'GroundTruth: video {va.video!r} has label {tube.label}, '
                                     f'expected < num_classes = {self.num_classes}')
            self.videos[va.video] = va
        if class_names is None:
            class_names = [f'class {k}' for k in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(f'GroundTruth.class_names: expected {self.num_classes} names, got '
                             f'{len(class_names)}')
        self.class_names = tuple(str(n) for n in class_names)

    def tubes(self, label: int | None = None) -> list[GroundTruthTube]:
        """Return all ground-truth tubes, or those of class ``label``."""
        return [t for va in self.videos.values() for t in va.tubes
                if label is None or t.label == label]

    def check_video(self, where: str, video: str) -> None:
        """Raise ValueError naming ``where`` if the video is not in the split."""
        if video not in self.videos:
            raise ValueError(f'{where}: video {video!r} is not in the ground truth')

    @classmethod
    def from_act(cls, gttubes: Mapping[str, Mapping[int, Sequence[np.ndarray]]],
                 nframes: Mapping[str, int], labels: Sequence[str],
                 videos: Iterable[str] | None = None,
                 inclusive: bool = True) -> 'GroundTruth':
        """Build from ACT-style annotations (UCF101v2-GT.pkl, JHMDB-GT.pkl, loaded dicts).

        Args:
            gttubes: video -> class index -> list of (n, 5) arrays (frame, x1, y1, x2, y2).
            nframes: video -> number of frames.
            labels: the K class names.
            videos: the videos of the split (e.g. ``test_videos[0]``); default all of
                ``nframes``.
            inclusive: the boxes are inclusive pixel boxes, as in ACT's files: x2 and y2 get
                + 1 to become continuous (the one place this convention is converted).
        """
        out = []
        for v in (nframes if videos is None else videos):
            tubes = []
            for label, arrays in gttubes.get(v, {}).items():
                for arr in arrays:
                    arr = np.asarray(arr, np.float64)
                    if arr.ndim != 2 or arr.shape[1] != 5:
                        raise ValueError(f'gttubes[{v!r}][{label}]: expected (n, 5) rows '
                                         f'(frame, x1, y1, x2, y2), got {arr.shape}')
                    boxes = arr[:, 1:5] + ((0.0, 0.0, 1.0, 1.0) if inclusive else 0.0)
                    tubes.append(GroundTruthTube(v, int(label), arr[:, 0], boxes))
            out.append(VideoAnnotations(v, int(nframes[v]), tuple(tubes)))
        return cls(out, len(labels), labels)


class FrameDetections:
    """Frame-level detections of a split, one row per box (columnar).

    Attributes:
        videos: (D,) video names.
        frames: (D,) int64 frame numbers.
        labels: (D,) int64 class indices.
        scores: (D,) float64 scores, finite and >= 0.
        boxes: (D, 4) float64 continuous pixel xyxy.
    """

    def __init__(self, videos: Sequence[str] | np.ndarray, frames: np.ndarray,
                 labels: np.ndarray, scores: np.ndarray, boxes: np.ndarray) -> None:
        self.videos = np.asarray(videos, dtype=object).reshape(-1)
        d = self.videos.shape[0]
        self.frames = np.asarray(frames, np.int64).reshape(-1)
        self.labels = np.asarray(labels, np.int64).reshape(-1)
        self.scores = np.asarray(scores, np.float64).reshape(-1)
        for name in ('frames', 'labels', 'scores'):
            if getattr(self, name).shape != (d,):
                raise ValueError(f'FrameDetections.{name}: expected shape ({d},) to match '
                                 f'videos, got {getattr(self, name).shape}')
        self.boxes = _check_boxes('FrameDetections', boxes, d)
        if d and (not np.all(np.isfinite(self.scores)) or self.scores.min() < 0):
            raise ValueError('FrameDetections.scores: expected finite values >= 0, got '
                             f'min {self.scores.min()}')
        if d and self.labels.min() < 0:
            raise ValueError(f'FrameDetections.labels: expected >= 0, got {self.labels.min()}')

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, int, int, float, Sequence[float]]]
                     ) -> 'FrameDetections':
        """Build from (video, frame, label, score, (x1, y1, x2, y2)) records."""
        rows = list(records)
        if not rows:
            return cls([], [], [], [], np.zeros((0, 4)))
        videos, frames, labels, scores, boxes = zip(*rows)
        return cls(list(videos), frames, labels, scores, np.asarray(boxes, np.float64))

    @classmethod
    def from_detections(cls, video: str, frame: int, det: Detections) -> 'FrameDetections':
        """Wrap one frame's ``Detections`` (the detector's output) for the evaluation."""
        d = len(det)
        return cls([video] * d, np.full(d, frame), det.labels, det.scores, det.boxes)

    @classmethod
    def concatenate(cls, parts: Iterable['FrameDetections']) -> 'FrameDetections':
        """Join several sets of detections."""
        parts = list(parts)
        if not parts:
            return cls([], [], [], [], np.zeros((0, 4)))
        return cls(np.concatenate([p.videos for p in parts]),
                   np.concatenate([p.frames for p in parts]),
                   np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.boxes for p in parts]))
