# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Evaluation metrics of spatio-temporal action localization: frame-AP and video-AP.

Both ROAD's (VOC all-points AP, the default) and ACT's (trapezoidal AP, tube NMS 0.3 before
video-AP) protocols are available; every result names the one used.  Boxes are continuous
pixel xyxy, as everywhere inside stal_ros: a detection equal to its ground truth has IoU 1.
Annotations that use inclusive pixel boxes (ACT's UCF101-24 / JHMDB files) are converted once,
where they are read (``GroundTruth.from_act``).
"""

from stal_ros.metrics.annotations import (DetectedTube, FrameDetections, GroundTruth,
                                          GroundTruthTube, VideoAnnotations)
from stal_ros.metrics.ap import (APResult, average_precision, ClassAP, DEFAULT_PROTOCOL,
                                 precision_recall, PROTOCOLS)
from stal_ros.metrics.frame_ap import frame_ap, frame_confusion
from stal_ros.metrics.overlap import spatio_temporal_iou, temporal_iou
from stal_ros.metrics.video_ap import (COCO_THRESHOLDS, DEFAULT_THRESHOLDS, tube_iou, tube_nms,
                                       video_ap, VideoAPResult)

__all__ = ['APResult', 'COCO_THRESHOLDS', 'ClassAP', 'DEFAULT_PROTOCOL', 'DEFAULT_THRESHOLDS',
           'DetectedTube', 'FrameDetections', 'GroundTruth', 'GroundTruthTube', 'PROTOCOLS',
           'VideoAPResult', 'VideoAnnotations', 'average_precision', 'frame_ap',
           'frame_confusion', 'precision_recall', 'spatio_temporal_iou', 'temporal_iou',
           'tube_iou', 'tube_nms', 'video_ap']
