# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑧ stal_ros's structures as rclpy messages: ``stal_ros.messages`` with rclpy's classes.

Every mapping (boxes as centre/size, class ids as decimal strings, tube states) is defined once
in ``stal_ros.messages``; this module binds it to the rclpy message classes the node publishes.
"""

from __future__ import annotations

import array
from typing import Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion
import numpy as np
from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis,
                             ObjectHypothesisWithPose, Point2D, Pose2D)

from stal_ros import messages
from stal_ros.messages import bbox2d_to_xyxy, detections_from_msg, time_to_ns
from stal_ros.msg import ActionTube, ActionTubeArray
from stal_ros.structures import Detections, Tube

__all__ = ['RCLPY_TYPES', 'bbox2d_to_xyxy', 'detections_from_msg', 'detections_to_msg',
           'ns_to_time', 'time_to_ns', 'tube_to_msg', 'tubes_to_detections_msg', 'tubes_to_msg',
           'xyxy_to_bbox2d']

RCLPY_TYPES = messages.MessageTypes(
    classes={'builtin_interfaces/msg/Time': Time, 'std_msgs/msg/Header': Header,
             'geometry_msgs/msg/Point': Point, 'geometry_msgs/msg/Quaternion': Quaternion,
             'geometry_msgs/msg/Pose': Pose,
             'geometry_msgs/msg/PoseWithCovariance': PoseWithCovariance,
             'vision_msgs/msg/Point2D': Point2D, 'vision_msgs/msg/Pose2D': Pose2D,
             'vision_msgs/msg/BoundingBox2D': BoundingBox2D,
             'vision_msgs/msg/ObjectHypothesis': ObjectHypothesis,
             'vision_msgs/msg/ObjectHypothesisWithPose': ObjectHypothesisWithPose,
             'vision_msgs/msg/Detection2D': Detection2D,
             'vision_msgs/msg/Detection2DArray': Detection2DArray,
             'stal_ros/msg/ActionTube': ActionTube,
             'stal_ros/msg/ActionTubeArray': ActionTubeArray},
    float32s=lambda values: array.array('f', np.asarray(values, np.float32).tobytes()))


def ns_to_time(stamp_ns: int) -> Time:
    """Convert integer nanoseconds (>= 0) to ``builtin_interfaces/Time``."""
    return messages.ns_to_time(RCLPY_TYPES, stamp_ns)


def xyxy_to_bbox2d(box: Sequence[float]) -> BoundingBox2D:
    """Convert one pixel xyxy box (4,) to a ``vision_msgs/BoundingBox2D`` (centre, size)."""
    return messages.xyxy_to_bbox2d(RCLPY_TYPES, box)


def tube_to_msg(tube: Tube, class_names: Sequence[str]) -> ActionTube:
    """Convert a linker ``Tube`` to an ``ActionTube`` message (see ``messages.tube_to_msg``)."""
    return messages.tube_to_msg(RCLPY_TYPES, tube, class_names)


def tubes_to_msg(header: Header, tubes: Sequence[Tube],
                 class_names: Sequence[str]) -> ActionTubeArray:
    """Build the ``ActionTubeArray`` of one frame; ``header`` is the source image's header."""
    return messages.tubes_to_msg(RCLPY_TYPES, header, tubes, class_names)


def tubes_to_detections_msg(header: Header, tubes: Sequence[Tube],
                            stamp_ns: int) -> Detection2DArray:
    """One ``Detection2D`` per tube observed at ``stamp_ns``, with ``id`` = the tube id."""
    return messages.tubes_to_detections_msg(RCLPY_TYPES, header, tubes, stamp_ns)


def detections_to_msg(header: Header, detections: Detections) -> Detection2DArray:
    """Raw per-frame detections (not linked, so ``id`` is empty) as a ``Detection2DArray``."""
    return messages.detections_to_msg(RCLPY_TYPES, header, detections)
