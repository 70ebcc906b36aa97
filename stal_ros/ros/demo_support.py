# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The demo's ROS-free parts: the clip stream, the process descriptions, the tube summary.

``stal_ros.ros.demo`` runs the demo (processes, DDS); ``launch/demo.launch.py`` starts the same
two processes on a robot.  Everything here is plain numpy / OpenCV, so it is tested without
ROS; it lives beside the demo because nothing else uses it.

The stream: ``videos`` clips of the synthetic motion benchmark's test split, ``frames`` frames
each, played back to back as one camera.  Frame ``i`` of the stream is frame ``i % frames`` of
clip ``i // frames``; stream frame numbers are used everywhere below.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import pathlib
import sys
from typing import Iterable, Sequence

import cv2
import numpy as np

from stal_ros.config import TubeConfig
from stal_ros.data.motion import make_split, MotionConfig, MotionVideo
from stal_ros.metrics.overlap import spatio_temporal_iou
from stal_ros.ros.launch_spec import fastdds_env, NodeSpec, stal_node_spec

NAMESPACE = 'stal_demo'
PUBLISHER_NAME = 'stal_image_publisher'
# A matched tube: same class and spatio-temporal IoU at least this (video-mAP@0.2's criterion).
MATCH_IOU = 0.2


# ------------------------------------------------------------------------------ the stream
def make_stream(videos: int, frames: int) -> list[MotionVideo]:
    """Return the first ``videos`` test-split clips, ``frames`` frames of 128 x 128 each."""
    if videos < 1 or frames < 3:
        raise ValueError(f'expected at least 1 video of at least 3 frames, got {videos} '
                         f'video(s) of {frames} frame(s)')
    return make_split('test', videos, MotionConfig(num_frames=frames))


def write_stream(videos: Sequence[MotionVideo], folder: pathlib.Path) -> int:
    """Write the clips back to back as ``folder/000000.png`` ... (lossless); return T.

    Existing PNGs in ``folder`` are removed first, so the folder holds exactly this stream.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob('*.png'):
        old.unlink()
    index = 0
    for video in videos:
        for rgb in video.frames:
            if not cv2.imwrite(str(folder / f'{index:06d}.png'), rgb[:, :, ::-1]):
                raise ValueError(f'cannot write {folder / f"{index:06d}.png"}')
            index += 1
    return index


# ------------------------------------------------------------------ the demo's processes
@dataclass(frozen=True)
class PublisherSpec:
    """The image publisher process: a ``NodeSpec`` plus its command-line arguments."""

    node: NodeSpec
    arguments: tuple[str, ...]

    def command(self) -> list[str]:
        """Return the command line (``python -m stal_ros.ros.image_publisher ...``)."""
        return self.node.command([sys.executable, '-m', 'stal_ros.ros.image_publisher',
                                  *self.arguments])


def demo_specs(source: str, *, rate: float, model: str = '', threshold: float = 0.2,
               loop: bool = False, wait: float = 0.0, count: int = 0,
               namespace: str = NAMESPACE) -> tuple[NodeSpec, PublisherSpec]:
    """Describe the demo's two processes: ``stal_node`` and the image publisher.

    Both run in ``namespace``; the publisher plays ``source`` (video file, image folder or
    /dev/videoN) on ``<namespace>/image`` (reliable), the node subscribes there reliably
    (no best-effort start before the publisher is known) with the CPU profile, ``model`` and
    score thresholds of ``threshold`` for boxes and tubes (above the defaults, 0.01 and
    0.1, which evaluation wants; an annotated image wants the confident tubes only).
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f'threshold: expected 0 <= threshold < 1, got {threshold}')
    node = stal_node_spec(namespace=namespace, profile='cpu', model=model)
    node = replace(node, parameters={**node.parameters, 'qos.reliability': 'reliable',
                                     'detector.postprocess.score_threshold': threshold,
                                     'tubes.score_threshold': threshold})
    args = [source, '--topic', 'image', '--rate', f'{rate:g}', '--frame-id', 'demo_camera']
    args += ['--loop'] if loop else []
    args += ['--wait', f'{wait:g}'] if wait else []
    args += ['--count', str(count)] if count else []
    publisher = NodeSpec(executable=PUBLISHER_NAME, name=PUBLISHER_NAME, namespace=namespace,
                         env=fastdds_env())
    return node, PublisherSpec(publisher, tuple(args))


# --------------------------------------------------------------------------- the results
def stream_frames(stamps: Iterable[int], total: int, rate: float,
                  latency: int = 0) -> dict[int, int]:
    """Map the header stamps (ns) of a stream's results to its frame numbers.

    The node's latest-frame policy keeps the newest clip, so its last result is for the
    stream's last frame that a clip can localise: frame ``total - 1 - latency``, ``latency``
    being the model's frames after the target (centred clips: (K - 1) // 2).  The image
    publisher stamps frame i at start + i / rate (plus a few ms), so a stamp s is frame
    ``total - 1 - latency - round((s_last - s) * rate)``.
    """
    stamps = sorted(set(stamps))
    if not stamps:
        return {}
    last = stamps[-1]
    return {s: total - 1 - latency - round((last - s) * 1e-9 * rate) for s in stamps}


@dataclass
class TubeRecord:
    """What the demo saw of one tube: its class, score and box in every stream frame."""

    tube_id: str
    class_name: str
    score: float = 0.0
    finished: bool = False
    boxes: dict[int, np.ndarray] = field(default_factory=dict)   # frame -> (4,) pixel xyxy

    @property
    def first(self) -> int:
        """Return the first stream frame of the tube."""
        return min(self.boxes)

    @property
    def last(self) -> int:
        """Return the last stream frame of the tube."""
        return max(self.boxes)

    @property
    def length(self) -> int:
        """Return the frames the tube spans, gap fills included."""
        return self.last - self.first + 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (n,) frames and (n, 4) boxes, in frame order."""
        frames = np.asarray(sorted(self.boxes), np.int64)
        return frames, np.stack([self.boxes[int(f)] for f in frames]).astype(np.float32)


class TubeLog:
    """Collects tubes from the node's per-frame tube arrays (converted to plain values)."""

    def __init__(self) -> None:
        self.tubes: dict[str, TubeRecord] = {}

    def add(self, tube_id: str, class_name: str, score: float, finished: bool,
            history: Sequence[tuple[int, Sequence[float]]]) -> None:
        """Record one tube of one message; ``history`` is its (stream frame, xyxy) entries."""
        record = self.tubes.setdefault(tube_id, TubeRecord(tube_id, class_name))
        record.score = float(score)
        record.finished = record.finished or finished
        for frame, box in history:
            record.boxes[int(frame)] = np.asarray(box, np.float32)

    def listed(self, min_length: int) -> list[TubeRecord]:
        """Return the tubes of at least ``min_length`` frames, by first frame."""
        return sorted((t for t in self.tubes.values() if t.boxes and t.length >= min_length),
                      key=lambda t: (t.first, t.tube_id))


def frames_to_text(first: int, last: int, rate: float) -> str:
    """Return 'first-last (t0-t1 s)' for stream frames at ``rate`` fps."""
    return f'{first}-{last} ({first / rate:.1f}-{(last + 1) / rate:.1f} s)'


def summary_lines(log: TubeLog, videos: Sequence[MotionVideo], rate: float,
                  min_length: int = TubeConfig().min_publish_length) -> list[str]:
    """Return the printed summary: the tubes, then per clip the truth and what matched.

    Tubes shorter than ``min_length`` frames are counted but not listed (the default is the
    node's own ``tubes.min_publish_length``, below which it publishes no tube).

    A true action counts as found when a listed tube of its class has a spatio-temporal IoU of
    at least ``MATCH_IOU`` with it (boxes in stream frames; the clips are 128 x 128).
    """
    frames_per_video = videos[0].num_frames if videos else 1
    listed = log.listed(min_length)
    hidden = len(log.tubes) - len(listed)
    lines = [f'{len(listed)} tubes of at least {min_length} frames'
             + (f' ({hidden} shorter ones not listed)' if hidden else '') + ':',
             f'  {"tube":<16} {"action":<11} {"clip":>4} {"frames (time)":<22} '
             f'{"length":>6} {"score":>5}']
    for tube in listed:
        lines.append(f'  {tube.tube_id:<16} {tube.class_name:<11} '
                     f'{tube.first // frames_per_video:>4} '
                     f'{frames_to_text(tube.first, tube.last, rate):<22} '
                     f'{tube.length:>6} {tube.score:>5.2f}')
    found = total = 0
    lines.append(f'Ground truth ({len(videos)} clips of {frames_per_video} frames; found = a '
                 f'tube of the same action with spatio-temporal IoU >= {MATCH_IOU}):')
    for index, video in enumerate(videos):
        offset = index * frames_per_video
        parts = []
        for gt in video.tubes:
            total += 1
            frames = gt.frames + offset
            best, best_iou = None, 0.0
            for tube in listed:
                if tube.class_name != gt.class_name:
                    continue
                iou = spatio_temporal_iou(*tube.arrays(), frames, gt.boxes)
                if iou > best_iou:
                    best, best_iou = tube, iou
            hit = best is not None and best_iou >= MATCH_IOU
            found += hit
            when = frames_to_text(int(frames[0]), int(frames[-1]), rate)
            parts.append(f'    {gt.class_name:<11} {when:<22} '
                         + (f'found by {best.tube_id} (ST-IoU {best_iou:.2f})' if hit
                            else 'missed'))
        lines.append(f'  clip {index} (frames {offset}-{offset + video.num_frames - 1}):'
                     + ('' if parts else ' no action'))
        lines += parts
    lines.append(f'Found {found} of {total} true actions.')
    return lines


def truth_at(videos: Sequence[MotionVideo], frame: int) -> list[tuple[str, np.ndarray]]:
    """Return the true actions in stream frame ``frame``: (class name, (4,) pixel xyxy)."""
    frames_per_video = videos[0].num_frames
    video = videos[frame // frames_per_video]
    local = frame % frames_per_video
    return [(t.class_name, t.boxes[local - t.frames[0]]) for t in video.tubes
            if t.frames[0] <= local <= t.frames[-1]]


def contact_sheet(tiles: Sequence[tuple[np.ndarray, Sequence[str], np.ndarray]],
                  columns: int = 4, tile_size: int = 384) -> np.ndarray:
    """Lay out annotated frames with caption lines under each and the true boxes dashed.

    Args:
        tiles: (image (H, W, 3) uint8 RGB, caption lines, (G, 4) true boxes in image pixels
            xyxy) triples; images are scaled to ``tile_size`` wide (nearest neighbour: the
            node's pixels stay as they are) and the true boxes drawn dashed in white.
        columns: tiles per row.
        tile_size: tile width and height in pixels.

    Returns:
        (rows * (tile_size + caption), columns * tile_size, 3) uint8 RGB.
    """
    if not tiles:
        raise ValueError('contact_sheet: expected at least one frame, got none')
    line_h = max(16, tile_size // 20)
    font_scale = line_h / 36.0
    caption_h = line_h * max(len(lines) for _, lines, _ in tiles) + line_h // 2
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * (tile_size + caption_h), columns * tile_size, 3), 255, np.uint8)
    for i, (image, lines, truth) in enumerate(tiles):
        height = round(image.shape[0] * tile_size / image.shape[1])
        tile = cv2.resize(image, (tile_size, height), interpolation=cv2.INTER_NEAREST)
        for box in np.asarray(truth, np.float64).reshape(-1, 4) * tile_size / image.shape[1]:
            _dashed_rectangle(tile, box, (255, 255, 255))
        y, x = (i // columns) * (tile_size + caption_h), (i % columns) * tile_size
        sheet[y:y + min(height, tile_size), x:x + tile_size] = tile[:tile_size]
        for k, line in enumerate(lines):
            while len(line) > 4 and cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                                                    1)[0][0] > tile_size - 10:
                line = line[:-4] + '...'     # never into the next tile
            cv2.putText(sheet, line, (x + 5, y + tile_size + line_h * (k + 1)),
                        cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(sheet, (x, y), (x + tile_size - 1, y + tile_size + caption_h - 1),
                      (200, 200, 200), 1)
    return sheet


def _dashed_rectangle(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int],
                      dash: int = 6) -> None:
    """Draw a dashed xyxy rectangle in place."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)),
                 ((x1, y2), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            p = (a[0] + (b[0] - a[0]) * start // max(length, 1),
                 a[1] + (b[1] - a[1]) * start // max(length, 1))
            q = (a[0] + (b[0] - a[0]) * end // max(length, 1),
                 a[1] + (b[1] - a[1]) * end // max(length, 1))
            cv2.line(image, p, q, colour, 1, cv2.LINE_AA)


def sheet_frames(total: int, frames_per_video: int, per_video: int = 2) -> list[int]:
    """Pick ``per_video`` evenly spread stream frames of every clip (for the contact sheet)."""
    picks = []
    for start in range(0, total, frames_per_video):
        for k in range(per_video):
            picks.append(start + round((k + 1) * (frames_per_video - 1) / (per_video + 1)))
    return picks
