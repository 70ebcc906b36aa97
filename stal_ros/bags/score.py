# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Ground truth in a bag, and scoring what the node published, by header stamp.

A bag carries its own ground truth on ``GT_TOPIC``: one ``stal_ros/ActionTubeArray`` per camera
frame, with that frame's header, listing every ground-truth tube present in the frame (id
``gt/<k>``, class, score 1) with a one-frame history (its box there); a tube is
``STATE_FINISHED`` in its last frame.  Outputs are scored from the node's own messages, so
offline evaluation (the pipeline run straight from the bag) and live evaluation (the node over
DDS) are scored by the same code from the same kind of data:

- frame-AP from the ``detections`` topic (``Detection2DArray``: the boxes of the tubes seen in
  each frame, with their per-frame scores);
- video-AP from the ``tubes`` topic: each tube is rebuilt from the histories of all the
  ``ActionTubeArray`` messages it appears in (a finished tube's own history wins where they
  overlap), so tubes still active when the stream ends are scored too.

Frame numbers are the 0-based positions of the camera images in the bag; every output is
matched to its frame by the header stamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from stal_ros import messages
from stal_ros.metrics import (DEFAULT_THRESHOLDS, DetectedTube, frame_ap, frame_confusion,
                              video_ap)
from stal_ros.metrics.annotations import (FrameDetections, GroundTruth, GroundTruthTube,
                                          VideoAnnotations)
from stal_ros.structures import Tube

GT_TOPIC = '/ground_truth/tubes'
GT_PREFIX = 'gt/'


def ground_truth_messages(types: messages.MessageTypes, tubes: Sequence[Any],
                          stamps_ns: Sequence[int], frame_id: str,
                          class_names: Sequence[str]) -> list[Any]:
    """Build the ground-truth ``ActionTubeArray`` of every frame of one video.

    Args:
        types: the message classes (``rosbags_types()`` for a bag).
        tubes: the video's ground-truth tubes (``label``, 0-based ``frames``, xyxy ``boxes``).
        stamps_ns: (T,) the header stamp of each frame.
        frame_id: the camera's frame id.
        class_names: the class list the labels index.

    Returns:
        T messages, the one of frame t first listing the tubes present in frame t.
    """
    per_frame: list[list[Tube]] = [[] for _ in stamps_ns]
    for k, tube in enumerate(tubes):
        frames = np.asarray(tube.frames, np.int64)
        boxes = np.asarray(tube.boxes, np.float32).reshape(-1, 4)
        start = int(frames[0])
        for f, box in zip(frames.tolist(), boxes):
            if not 0 <= f < len(stamps_ns):
                raise ValueError(f"ground-truth tube {k}: frame {f} outside the video's "
                                 f'{len(stamps_ns)} frames')
            one = np.array([int(stamps_ns[f])], np.int64)
            per_frame[f].append(Tube(
                tube_id=f'{GT_PREFIX}{k}', label=int(tube.label), score=1.0,
                state='finished' if f == int(frames[-1]) else 'active',
                start_stamp_ns=int(stamps_ns[start]), last_stamp_ns=int(stamps_ns[f]),
                start_frame=start, last_frame=f, num_observed=f - start + 1, stamps_ns=one,
                frame_indices=np.array([f], np.int64), boxes=box.reshape(1, 4),
                scores=np.ones(1, np.float32), observed=np.ones(1, bool)))
    return [messages.tubes_to_msg(types, messages.header(types, s, frame_id), frame_tubes,
                                  class_names)
            for s, frame_tubes in zip(stamps_ns, per_frame)]


@dataclass
class CollectedTube:
    """A tube rebuilt from ``ActionTubeArray`` messages.

    Attributes:
        tube_id, label: as in the messages.
        score: the tube score in the latest message that had it.
        finished: whether a ``STATE_FINISHED`` message of it was seen.
        entries: stamp -> (box xyxy (4,), per-frame score).
    """

    tube_id: str
    label: int
    score: float = 0.0
    finished: bool = False
    start_ns: int = 0
    last_ns: int = 0
    entries: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def history(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return stamps (n,) int64, boxes (n, 4) float64 and scores (n,) of the tube's life."""
        stamps = sorted(s for s in self.entries if self.start_ns <= s <= self.last_ns)
        boxes = np.array([self.entries[s][0] for s in stamps], np.float64).reshape(-1, 4)
        scores = np.array([self.entries[s][1] for s in stamps], np.float64)
        return np.array(stamps, np.int64), boxes, scores


class TubeCollector:
    """Rebuild whole tubes from a stream of ``ActionTubeArray`` messages (any order)."""

    def __init__(self) -> None:
        self.tubes: dict[str, CollectedTube] = {}

    def add(self, msg: Any) -> None:
        """Take one ``ActionTubeArray``."""
        for tube in msg.tubes:
            got = self.tubes.get(tube.id)
            if got is None:
                got = self.tubes[tube.id] = CollectedTube(tube.id, int(tube.class_id))
            finished = int(tube.state) == messages.STATE_FINISHED
            last = messages.time_to_ns(tube.last_stamp)
            if finished or (not got.finished and last >= got.last_ns):
                got.score = float(tube.score)
                got.start_ns = messages.time_to_ns(tube.start_stamp)
                got.last_ns = last
            got.finished = got.finished or finished
            for stamp, box, score in zip(tube.stamps, tube.boxes, tube.scores):
                key = messages.time_to_ns(stamp)
                if finished or key not in got.entries:
                    got.entries[key] = (messages.bbox2d_to_xyxy(box), float(score))


class FrameIndex:
    """0-based frame numbers of one video's camera images, looked up by header stamp."""

    def __init__(self, video: str, stamps_ns: Iterable[int]) -> None:
        self.video = video
        self.stamps = [int(s) for s in stamps_ns]
        self._index = {s: i for i, s in enumerate(self.stamps)}
        if len(self._index) != len(self.stamps):
            raise ValueError(f'{video}: camera images with the same header stamp; frames must '
                             'have distinct stamps to be matched with the outputs')

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.stamps)

    def frame(self, stamp_ns: int, what: str) -> int:
        """Return the frame number of ``stamp_ns``; ``what`` names the message in errors."""
        try:
            return self._index[int(stamp_ns)]
        except KeyError:
            raise ValueError(f'{self.video}: {what} has stamp {stamp_ns} ns, which is no '
                             'camera image of the bag') from None


def _rebuilt(index: FrameIndex, msgs: Iterable[Any], what: str
             ) -> list[tuple[CollectedTube, np.ndarray, np.ndarray, np.ndarray]]:
    """Rebuild the tubes of ``ActionTubeArray`` messages, matched to the video's frames.

    Returns, per tube in id order, ``(tube, frames (n,) int64, boxes (n, 4), scores (n,))``.
    ``what`` names the messages in errors.
    """
    collector = TubeCollector()
    for msg in msgs:
        index.frame(messages.time_to_ns(msg.header.stamp), what)
        collector.add(msg)
    out = []
    for got in sorted(collector.tubes.values(), key=lambda t: t.tube_id):
        stamps, boxes, scores = got.history()
        frames = np.array([index.frame(s, f'tube {got.tube_id}') for s in stamps], np.int64)
        out.append((got, frames, boxes, scores))
    return out


def ground_truth_annotations(index: FrameIndex, gt_msgs: Iterable[Any]) -> VideoAnnotations:
    """Read one video's ground truth from its ``GT_TOPIC`` messages."""
    tubes = tuple(GroundTruthTube(index.video, got.label, frames, boxes)
                  for got, frames, boxes, _ in _rebuilt(index, gt_msgs, 'a ground-truth message'))
    return VideoAnnotations(index.video, len(index), tubes)


def frame_detections(index: FrameIndex, detection_msgs: Iterable[Any]) -> FrameDetections:
    """Per-frame detections of one video from its ``Detection2DArray`` messages."""
    parts = []
    for msg in detection_msgs:
        frame = index.frame(messages.time_to_ns(msg.header.stamp), 'a Detection2DArray')
        dets, _ = messages.detections_from_msg(msg)
        parts.append(FrameDetections.from_detections(index.video, frame, dets))
    return FrameDetections.concatenate(parts)


def detected_tubes(index: FrameIndex, tube_msgs: Iterable[Any]) -> list[DetectedTube]:
    """Whole tubes of one video from its ``ActionTubeArray`` messages."""
    return [DetectedTube(index.video, got.label, got.score, frames, boxes, scores)
            for got, frames, boxes, scores in _rebuilt(index, tube_msgs, 'an ActionTubeArray')
            if len(frames)]


@dataclass
class VideoOutputs:
    """What was published for one video, with its ground truth.

    Attributes:
        index: the video's frames by stamp.
        annotations: the ground truth.
        detections: the per-frame detections.
        tubes: the whole tubes.
        published: frames that got outputs (the rest were dropped).
    """

    index: FrameIndex
    annotations: VideoAnnotations
    detections: FrameDetections
    tubes: list[DetectedTube]
    published: int


def video_outputs(index: FrameIndex, annotations: VideoAnnotations,
                  detection_msgs: Sequence[Any], tube_msgs: Sequence[Any]) -> VideoOutputs:
    """Score-ready outputs of one video from the messages published for it."""
    published = len({messages.time_to_ns(m.header.stamp) for m in detection_msgs})
    return VideoOutputs(index, annotations, frame_detections(index, detection_msgs),
                        detected_tubes(index, tube_msgs), published)


def score(videos: Sequence[VideoOutputs], class_names: Sequence[str], *, iou: float = 0.5,
          thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """Frame-AP and video-AP of published outputs, in ``stal_ros.evaluate.summary``'s form."""
    if not videos:
        raise ValueError('score: expected at least one video, got none')
    gt = GroundTruth([v.annotations for v in videos], len(class_names), class_names)
    detections = FrameDetections.concatenate(v.detections for v in videos)
    frames = frame_ap(gt, detections, iou)
    tubes = [t for v in videos for t in v.tubes]
    video = video_ap(gt, tubes, DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    return {'frame': frames, 'confusion': frame_confusion(gt, detections, iou), 'video': video,
            'flow_epe': None, 'num_videos': len(videos),
            'num_frames': sum(len(v.index) for v in videos), 'num_tubes': len(tubes),
            'seconds_per_frame': None}
