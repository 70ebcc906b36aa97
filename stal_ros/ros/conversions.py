# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑧ The only code converting between ROS messages and stal_ros's numpy structures.

Inside stal_ros boxes are absolute pixel xyxy; vision_msgs' centre/size form exists only here.
``ObjectHypothesis.class_id`` carries the class index as a decimal string (as
``vision_msgs/LabelInfo`` maps ids to names); ``ActionTube`` carries index and name.
"""

from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Time
import numpy as np
from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray,
                             ObjectHypothesisWithPose)

from stal_ros.msg import ActionTube, ActionTubeArray
from stal_ros.structures import Detections, Tube

_NS = 1_000_000_000


def ns_to_time(stamp_ns: int) -> Time:
    """Convert integer nanoseconds (>= 0) to ``builtin_interfaces/Time``."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamp_ns = {stamp_ns}: expected >= 0')
    return Time(sec=stamp_ns // _NS, nanosec=stamp_ns % _NS)


def time_to_ns(stamp: Time) -> int:
    """Convert ``builtin_interfaces/Time`` to integer nanoseconds."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def xyxy_to_bbox2d(box: Sequence[float]) -> BoundingBox2D:
    """Convert one pixel xyxy box (4,) to a ``vision_msgs/BoundingBox2D`` (centre, size)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    msg = BoundingBox2D()
    msg.center.position.x = (x1 + x2) / 2.0
    msg.center.position.y = (y1 + y2) / 2.0
    msg.center.theta = 0.0
    msg.size_x = x2 - x1
    msg.size_y = y2 - y1
    return msg


def bbox2d_to_xyxy(msg: BoundingBox2D) -> np.ndarray:
    """Convert a ``vision_msgs/BoundingBox2D`` (theta ignored) to a (4,) float32 xyxy box."""
    cx, cy = msg.center.position.x, msg.center.position.y
    hw, hh = msg.size_x / 2.0, msg.size_y / 2.0
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float32)


def _class_name(label: int, class_names: Sequence[str]) -> str:
    if not 0 <= label < len(class_names):
        raise ValueError(f'class index {label}: expected 0 <= index < {len(class_names)} '
                         '(the model has that many classes)')
    return class_names[label]


def tube_to_msg(tube: Tube, class_names: Sequence[str]) -> ActionTube:
    """Convert a linker ``Tube`` to an ``ActionTube`` message.

    The per-frame history (n frames, capped by ``tubes.max_history``) becomes the parallel
    arrays; frames filled across a gap get score 0 (their box repeats the last observed one).
    """
    msg = ActionTube()
    msg.id = tube.tube_id
    msg.class_id = int(tube.label)
    msg.class_name = _class_name(int(tube.label), class_names)
    msg.score = float(tube.score)
    msg.state = ActionTube.STATE_FINISHED if tube.state == 'finished' else \
        ActionTube.STATE_ACTIVE
    msg.start_stamp = ns_to_time(tube.start_stamp_ns)
    msg.last_stamp = ns_to_time(tube.last_stamp_ns)
    msg.length = int(tube.length)
    msg.stamps = [ns_to_time(s) for s in tube.stamps_ns]
    msg.boxes = [xyxy_to_bbox2d(b) for b in tube.boxes]
    msg.scores = np.where(tube.observed, tube.scores, 0.0).astype(np.float32).tolist()
    return msg


def tubes_to_msg(header: Header, tubes: Sequence[Tube],
                 class_names: Sequence[str]) -> ActionTubeArray:
    """Build the ``ActionTubeArray`` of one frame; ``header`` is the source image's header."""
    return ActionTubeArray(header=header, tubes=[tube_to_msg(t, class_names) for t in tubes])


def _detection(header: Header, box: np.ndarray, label: int, score: float,
               det_id: str) -> Detection2D:
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id = str(int(label))
    hyp.hypothesis.score = float(score)
    return Detection2D(header=header, results=[hyp], bbox=xyxy_to_bbox2d(box), id=det_id)


def tubes_to_detections_msg(header: Header, tubes: Sequence[Tube],
                            stamp_ns: int) -> Detection2DArray:
    """One ``Detection2D`` per tube observed at ``stamp_ns``, with ``id`` = the tube id.

    Tubes not observed at this frame (inside a gap) and finished tubes add nothing: the array
    holds exactly the boxes seen in this image.
    """
    dets = [_detection(header, t.boxes[-1], t.label, t.scores[-1], t.tube_id)
            for t in tubes
            if t.state == 'active' and t.last_stamp_ns == stamp_ns and len(t.boxes)
            and t.observed[-1]]
    return Detection2DArray(header=header, detections=dets)


def detections_to_msg(header: Header, detections: Detections) -> Detection2DArray:
    """Raw per-frame detections (not linked, so ``id`` is empty) as a ``Detection2DArray``."""
    dets = [_detection(header, b, lab, s, '')
            for b, lab, s in zip(detections.boxes, detections.labels, detections.scores)]
    return Detection2DArray(header=header, detections=dets)


def detections_from_msg(msg: Detection2DArray) -> tuple[Detections, list[str]]:
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
