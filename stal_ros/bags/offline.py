# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Offline evaluation: the node's pipeline run straight from a bag, every frame, no DDS.

Each bag is one video.  Its camera images go through the same ``Pipeline`` the node runs (one
camera, the latest-clip policy never drops here because every frame is stepped at once; as
live, the last (K - 1) // 2 frames of centred clips wait for frames that never come, where
``stal-evaluate`` ends each video with ``FrameBuffer.flush``), and
the outputs are built as the same ``Detection2DArray`` / ``ActionTubeArray`` messages the node
publishes (``stal_ros.messages``), with the source images' headers.  They are scored by
``stal_ros.bags.score`` (the code that scores live runs too) and can be written back as a bag.
The report also has ``frame_map_raw``: frame-AP of the detector's raw boxes, as
``stal-evaluate`` computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import time
from typing import Any, Mapping, Sequence

import numpy as np

from stal_ros import messages
from stal_ros.bags.io import BagError, BagReader, BagWriter
from stal_ros.bags.score import (FrameIndex, ground_truth_annotations, GT_TOPIC,
                                 video_outputs, VideoOutputs)
from stal_ros.bags.types import rosbags_types
from stal_ros.config import TubeConfig
from stal_ros.metrics import frame_ap, GroundTruth
from stal_ros.metrics.annotations import FrameDetections, GroundTruthTube, VideoAnnotations
from stal_ros.pipeline import Pipeline, published_tubes

CAMERA = 'camera'


@dataclass
class BagRun:
    """The outputs of one bag run through the pipeline.

    Attributes:
        video: the video's name (the bag's folder name).
        index: the camera frames by stamp.
        detection_msgs, tube_msgs: the messages the node would publish, one per processed frame.
        raw: the detector's raw per-frame detections.
        gt_msgs: the bag's ground-truth messages (empty when it has none).
        seconds: wall time of the run.
    """

    video: str
    index: FrameIndex
    detection_msgs: list[Any]
    tube_msgs: list[Any]
    raw: FrameDetections
    gt_msgs: list[Any]
    seconds: float


def run_bag(detector: Any, path: str | os.PathLike, topic: str, tubes: TubeConfig, *,
            max_history: int, results: str | os.PathLike | None = None,
            storage: str = 'mcap', progress: bool = False) -> BagRun:
    """Run the pipeline over every image of ``topic`` in the bag at ``path``.

    Args:
        detector: a ``Detector``.
        path: the bag.
        topic: the camera topic (``Image`` or ``CompressedImage``).
        tubes: the linker settings (``tubes.max_history`` at least the bag's frame count for
            whole finished tubes).
        max_history: the node's ``output.max_history`` (history of active tubes per message).
        results: if given, a new bag folder to write ``detections`` and ``tubes`` into.
        storage: storage of the results bag.
        progress: show a tqdm progress bar.
    """
    path = Path(path)
    types = rosbags_types()
    pipeline = Pipeline(detector, tubes, [CAMERA])
    det_msgs, tube_msgs, raw, stamps = [], [], [], []
    log_times: dict[int, int] = {}
    began = time.monotonic()
    with BagReader(path) as bag:
        total = bag.count(topic)
        gt_msgs = ([m for _, _, m in bag.messages(GT_TOPIC, ('stal_ros/msg/ActionTubeArray',))]
                   if GT_TOPIC in bag.topics else [])
        images = bag.images(topic)
        if progress:
            from tqdm import tqdm
            images = tqdm(images, total=total, desc=path.name, unit='frame')
        for image in images:
            stamps.append(image.stamp_ns)
            log_times[image.stamp_ns] = image.log_time_ns
            head = messages.header(types, image.stamp_ns, image.frame_id)
            pipeline.push(CAMERA, image.rgb, image.stamp_ns, head)
            for result in pipeline.step():
                active, listed = published_tubes(result, max_history)
                det_msgs.append(messages.tubes_to_detections_msg(types, result.meta, active,
                                                                 result.stamp_ns))
                tube_msgs.append(messages.tubes_to_msg(types, result.meta, listed,
                                                       pipeline.class_names))
                raw.append((result.stamp_ns, result.detections))
    if not stamps:
        raise BagError(path, 'no camera images', topic)
    index = FrameIndex(path.name, stamps)
    raw_dets = FrameDetections.concatenate(
        FrameDetections.from_detections(index.video, index.frame(s, 'a result'), d)
        for s, d in raw)
    run = BagRun(path.name, index, det_msgs, tube_msgs, raw_dets, gt_msgs,
                 time.monotonic() - began)
    if results is not None:
        write_outputs(results, run.detection_msgs, run.tube_msgs, run.gt_msgs, log_times,
                      storage)
    return run


def write_outputs(path: str | os.PathLike, detection_msgs: Sequence[Any],
                  tube_msgs: Sequence[Any], gt_msgs: Sequence[Any],
                  log_times: Mapping[int, int] | None = None, storage: str = 'mcap') -> None:
    """Write published outputs (and the ground truth) as a bag of ``rosbags`` messages.

    Topics ``/detections``, ``/tubes`` and ``GT_TOPIC``.  Each message is logged at the log
    time of its source image (``log_times``, by header stamp), or at its stamp if not listed.
    """
    def log_time(msg: Any) -> int:
        stamp = messages.time_to_ns(msg.header.stamp)
        return stamp if log_times is None else log_times.get(stamp, stamp)

    with BagWriter(path, storage) as out:
        for topic, msgs in (('/detections', detection_msgs), ('/tubes', tube_msgs),
                            (GT_TOPIC, gt_msgs)):
            for msg in msgs:
                out.write(topic, log_time(msg), msg)


def read_gt_file(path: str | os.PathLike, index: FrameIndex,
                 num_classes: int) -> VideoAnnotations:
    """Read a ground-truth JSON file for one bag.

    Format: ``{"tubes": [{"label": k, "stamps_ns": [...], "boxes": [[x1, y1, x2, y2], ...]},
    ...]}`` with 0-based labels into the model's classes, header stamps of the bag's images and
    continuous pixel xyxy boxes.
    """
    try:
        data = json.loads(Path(path).read_text())
        items = data['tubes']
        tubes = []
        for k, item in enumerate(items):
            label = int(item['label'])
            if not 0 <= label < num_classes:
                raise ValueError(f'tubes[{k}].label = {label}: expected 0 <= label < '
                                 f'{num_classes}')
            frames = np.array([index.frame(s, f'tubes[{k}]') for s in item['stamps_ns']],
                              np.int64)
            boxes = np.asarray(item['boxes'], np.float64).reshape(-1, 4)
            tubes.append(GroundTruthTube(index.video, label, frames, boxes))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f'{path}: cannot read the ground truth ({type(exc).__name__}: '
                         f'{exc})') from None
    return VideoAnnotations(index.video, len(index), tuple(tubes))


def outputs_of(run: BagRun, class_names: Sequence[str],
               gt_file: str | os.PathLike | None = None) -> VideoOutputs:
    """Score-ready outputs of a run, with the bag's ground truth (or ``gt_file``'s)."""
    if gt_file is not None:
        annotations = read_gt_file(gt_file, run.index, len(class_names))
    elif run.gt_msgs:
        annotations = ground_truth_annotations(run.index, run.gt_msgs)
    else:
        raise ValueError(f'{run.video}: the bag has no {GT_TOPIC} topic; give a ground-truth '
                         'file (--gt)')
    return video_outputs(run.index, annotations, run.detection_msgs, run.tube_msgs)


def raw_frame_map(runs: Sequence[BagRun], outputs: Sequence[VideoOutputs],
                  class_names: Sequence[str], iou: float = 0.5) -> float:
    """Frame-mAP of the detector's raw boxes (``stal-evaluate``'s frame-mAP)."""
    gt = GroundTruth([o.annotations for o in outputs], len(class_names), class_names)
    return frame_ap(gt, FrameDetections.concatenate(r.raw for r in runs), iou).mean_ap
