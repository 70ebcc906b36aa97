# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The one mapping between stal_ros's structures and its output messages, for any message classes.

The node publishes rclpy messages; the bag tools write ``rosbags`` messages without ROS.  Both
kinds of classes take every field as a keyword, so the messages are built here once, from a
``MessageTypes`` table of the classes to use (``stal_ros.ros.conversions`` passes rclpy's,
``stal_ros.bags.types`` the ``rosbags`` ones), and read back here once (attribute access is the
same for both).

Inside stal_ros boxes are absolute pixel xyxy; vision_msgs' centre/size form exists only here.
``ObjectHypothesis.class_id`` carries the class index as a decimal string (as
``vision_msgs/LabelInfo`` maps ids to names); ``ActionTube`` carries index and name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from stal_ros.structures import Detections, Tube

_NS = 1_000_000_000

# stal_ros/msg/ActionTube constants (test_messages checks them against the generated class).
STATE_ACTIVE = 0
STATE_FINISHED = 1

# The message types built here, by their full ROS names.
TYPE_NAMES: tuple[str, ...] = (
    'builtin_interfaces/msg/Time', 'std_msgs/msg/Header', 'geometry_msgs/msg/Point',
    'geometry_msgs/msg/Quaternion', 'geometry_msgs/msg/Pose',
    'geometry_msgs/msg/PoseWithCovariance', 'vision_msgs/msg/Point2D', 'vision_msgs/msg/Pose2D',
    'vision_msgs/msg/BoundingBox2D', 'vision_msgs/msg/ObjectHypothesis',
    'vision_msgs/msg/ObjectHypothesisWithPose', 'vision_msgs/msg/Detection2D',
    'vision_msgs/msg/Detection2DArray', 'stal_ros/msg/ActionTube',
    'stal_ros/msg/ActionTubeArray')


@dataclass(frozen=True)
class MessageTypes:
    """The message classes to build with.

    Attributes:
        classes: full ROS type name (``TYPE_NAMES``) -> class taking every field as keyword.
        float32s: turns a (n,) float32 array into the value a ``float32[]`` field takes
            (rclpy: ``array.array('f')``; rosbags: the numpy array itself).
    """

    classes: Mapping[str, type]
    float32s: Callable[[np.ndarray], Any]

    def __post_init__(self) -> None:
        missing = [n for n in TYPE_NAMES if n not in self.classes]
        if missing:
            raise ValueError(f'MessageTypes.classes: expected classes for {missing}')

    def new(self, name: str, **fields: Any) -> Any:
        """Build message ``name`` (e.g. ``'std_msgs/msg/Header'``) from all its fields."""
        return self.classes[name](**fields)


def ns_to_time(types: MessageTypes, stamp_ns: int) -> Any:
    """Convert integer nanoseconds (>= 0) to ``builtin_interfaces/Time``."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamp_ns = {stamp_ns}: expected >= 0')
    return types.new('builtin_interfaces/msg/Time', sec=stamp_ns // _NS,
                     nanosec=stamp_ns % _NS)


def time_to_ns(stamp: Any) -> int:
    """Convert ``builtin_interfaces/Time`` to integer nanoseconds."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def header(types: MessageTypes, stamp_ns: int, frame_id: str) -> Any:
    """Build a ``std_msgs/Header``."""
    return types.new('std_msgs/msg/Header', stamp=ns_to_time(types, stamp_ns),
                     frame_id=str(frame_id))


def xyxy_to_bbox2d(types: MessageTypes, box: Sequence[float]) -> Any:
    """Convert one pixel xyxy box (4,) to a ``vision_msgs/BoundingBox2D`` (centre, size)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    point = types.new('vision_msgs/msg/Point2D', x=(x1 + x2) / 2.0, y=(y1 + y2) / 2.0)
    center = types.new('vision_msgs/msg/Pose2D', position=point, theta=0.0)
    return types.new('vision_msgs/msg/BoundingBox2D', center=center, size_x=x2 - x1,
                     size_y=y2 - y1)


def bbox2d_to_xyxy(msg: Any) -> np.ndarray:
    """Convert a ``vision_msgs/BoundingBox2D`` (theta ignored) to a (4,) float32 xyxy box."""
    cx, cy = msg.center.position.x, msg.center.position.y
    hw, hh = msg.size_x / 2.0, msg.size_y / 2.0
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float32)


def _class_name(label: int, class_names: Sequence[str]) -> str:
    if not 0 <= label < len(class_names):
        raise ValueError(f'class index {label}: expected 0 <= index < {len(class_names)} '
                         '(the model has that many classes)')
    return class_names[label]


def tube_to_msg(types: MessageTypes, tube: Tube, class_names: Sequence[str]) -> Any:
    """Convert a linker ``Tube`` to an ``ActionTube`` message.

    The per-frame history (n frames, capped by ``tubes.max_history``) becomes the parallel
    arrays; frames filled across a gap get score 0 (their box repeats the last observed one).
    """
    scores = np.where(tube.observed, tube.scores, 0.0).astype(np.float32)
    return types.new(
        'stal_ros/msg/ActionTube', id=tube.tube_id, class_id=int(tube.label),
        class_name=_class_name(int(tube.label), class_names), score=float(tube.score),
        state=STATE_FINISHED if tube.state == 'finished' else STATE_ACTIVE,
        start_stamp=ns_to_time(types, tube.start_stamp_ns),
        last_stamp=ns_to_time(types, tube.last_stamp_ns), length=int(tube.length),
        stamps=[ns_to_time(types, s) for s in tube.stamps_ns],
        boxes=[xyxy_to_bbox2d(types, b) for b in tube.boxes], scores=types.float32s(scores))


def tubes_to_msg(types: MessageTypes, head: Any, tubes: Sequence[Tube],
                 class_names: Sequence[str]) -> Any:
    """Build the ``ActionTubeArray`` of one frame; ``head`` is the source image's header."""
    return types.new('stal_ros/msg/ActionTubeArray', header=head,
                     tubes=[tube_to_msg(types, t, class_names) for t in tubes])


def _detection(types: MessageTypes, head: Any, box: np.ndarray, label: int, score: float,
               det_id: str) -> Any:
    hypothesis = types.new('vision_msgs/msg/ObjectHypothesis', class_id=str(int(label)),
                           score=float(score))
    pose = types.new(
        'geometry_msgs/msg/PoseWithCovariance',
        pose=types.new('geometry_msgs/msg/Pose',
                       position=types.new('geometry_msgs/msg/Point', x=0.0, y=0.0, z=0.0),
                       orientation=types.new('geometry_msgs/msg/Quaternion', x=0.0, y=0.0,
                                             z=0.0, w=1.0)),
        covariance=np.zeros(36, np.float64))
    result = types.new('vision_msgs/msg/ObjectHypothesisWithPose', hypothesis=hypothesis,
                       pose=pose)
    return types.new('vision_msgs/msg/Detection2D', header=head, results=[result],
                     bbox=xyxy_to_bbox2d(types, box), id=det_id)


def tubes_to_detections_msg(types: MessageTypes, head: Any, tubes: Sequence[Tube],
                            stamp_ns: int) -> Any:
    """One ``Detection2D`` per tube observed at ``stamp_ns``, with ``id`` = the tube id.

    Tubes not observed at this frame (inside a gap) and finished tubes add nothing: the array
    holds exactly the boxes seen in this image.
    """
    dets = [_detection(types, head, t.boxes[-1], t.label, t.scores[-1], t.tube_id)
            for t in tubes
            if t.state == 'active' and t.last_stamp_ns == stamp_ns and len(t.boxes)
            and t.observed[-1]]
    return types.new('vision_msgs/msg/Detection2DArray', header=head, detections=dets)


def detections_to_msg(types: MessageTypes, head: Any, detections: Detections) -> Any:
    """Raw per-frame detections (not linked, so ``id`` is empty) as a ``Detection2DArray``."""
    dets = [_detection(types, head, b, lab, s, '')
            for b, lab, s in zip(detections.boxes, detections.labels, detections.scores)]
    return types.new('vision_msgs/msg/Detection2DArray', header=head, detections=dets)


def detections_from_msg(msg: Any) -> tuple[Detections, list[str]]:
    """Read a ``Detection2DArray`` back (e.g. from a bag): detections and their ids.

    Each detection's best hypothesis gives label and score; ``class_id`` must be a class index.
    """
    boxes, scores, labels, ids = [], [], [], []
    for i, det in enumerate(msg.detections):
        if not det.results:
            raise ValueError(f'detections[{i}]: expected at least one hypothesis, got none')
        best = max(det.results, key=lambda r: r.hypothesis.score).hypothesis
        try:
            labels.append(int(best.class_id))
        except ValueError:
            raise ValueError(f'detections[{i}].results.hypothesis.class_id = '
                             f'{best.class_id!r}: expected a class index') from None
        boxes.append(bbox2d_to_xyxy(det.bbox))
        scores.append(best.score)
        ids.append(det.id)
    if not boxes:
        return Detections.empty(), []
    return Detections(np.stack(boxes), np.asarray(scores), np.asarray(labels)), ids
