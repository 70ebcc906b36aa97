# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Evaluation metrics of spatio-temporal action localization: frame-AP and video-AP.

Both ROAD's (VOC all-points AP, the default) and ACT's (trapezoidal AP, tube NMS 0.3 before
video-AP) protocols are available; every result names the one used.  Boxes are inclusive
pixel boxes, as in the UCF101-24 / JHMDB annotations and both reference implementations.
"""

from stal_ros.metrics.annotations import (DetectedTube, FrameDetections, GroundTruth,
                                          GroundTruthTube, VideoAnnotations)
from stal_ros.metrics.ap import (APResult, average_precision, ClassAP, DEFAULT_PROTOCOL,
                                 precision_recall, PROTOCOLS)
from stal_ros.metrics.boxes import (box_iou_inclusive, paired_iou_inclusive,
                                    spatio_temporal_iou, temporal_iou)
from stal_ros.metrics.frame_ap import frame_ap
from stal_ros.metrics.video_ap import (COCO_THRESHOLDS, DEFAULT_THRESHOLDS, tube_iou, tube_nms,
                                       video_ap, VideoAPResult)

__all__ = ['APResult', 'COCO_THRESHOLDS', 'ClassAP', 'DEFAULT_PROTOCOL', 'DEFAULT_THRESHOLDS',
           'DetectedTube', 'FrameDetections', 'GroundTruth', 'GroundTruthTube', 'PROTOCOLS',
           'VideoAPResult', 'VideoAnnotations', 'average_precision', 'box_iou_inclusive',
           'frame_ap', 'paired_iou_inclusive', 'precision_recall', 'spatio_temporal_iou',
           'temporal_iou', 'tube_iou', 'tube_nms', 'video_ap']
