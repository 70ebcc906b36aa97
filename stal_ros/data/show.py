# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""A picture of motion-benchmark videos: rows = videos, columns = frames, boxes and flow.

Each cell is a frame scaled up by an integer factor, with the boxes of the actors that act in
it (class colour, class name) and of idle actors (thin, grey, 'idle'); beside it a panel holds
the colour-coded flow to the next frame (hue = direction, brightness = speed, as in
Middlebury's flow pictures; kept out of the frame so it hides no actor), the frame index, the
video name and the acting classes.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from stal_ros.data.motion import CLASS_NAMES, MotionVideo

__all__ = ['CLASS_COLOURS', 'IDLE_COLOUR', 'flow_to_rgb', 'grid_image']

# One RGB colour per class of CLASS_NAMES (tab10-like, bright enough on any background).
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 160, 255), (255, 160, 0), (0, 230, 110), (230, 60, 230),
    (255, 240, 40), (40, 230, 230), (255, 130, 190), (160, 110, 255))
IDLE_COLOUR = (170, 170, 170)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def flow_to_rgb(flow: np.ndarray, max_speed: float | None = None) -> np.ndarray:
    """Colour-code a flow field: hue = direction, value = speed / ``max_speed`` (capped at 1).

    Args:
        flow: (H, W, 2) float flow in pixels (x, y).
        max_speed: speed shown at full brightness; None: the 99th percentile (at least 1 px).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f'flow_to_rgb: expected (H, W, 2), got {flow.shape}')
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    if max_speed is None:
        max_speed = max(float(np.percentile(mag, 99)), 1.0)
    hsv = np.stack([ang / 2, np.full_like(mag, 255), np.clip(mag / max_speed, 0, 1) * 255], -1)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` on a filled bar whose bottom-left corner is (x, y), kept inside."""
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.35, 1)
    h, w = img.shape[:2]
    x = int(np.clip(x, 0, max(w - tw - 2, 0)))
    y = int(np.clip(y, th + base + 1, h - 1))
    cv2.rectangle(img, (x, y - th - base - 1), (x + tw + 1, y - 1), colour, -1)
    dark = sum(colour) > 380
    cv2.putText(img, text, (x + 1, y - base - 1), _FONT, 0.35,
                (0, 0, 0) if dark else (255, 255, 255), 1, cv2.LINE_AA)


def _text(img: np.ndarray, text: str, x: int, y: int,
          colour: tuple[int, int, int] = (255, 255, 255)) -> None:
    cv2.putText(img, text, (x, y), _FONT, 0.35, colour, 1, cv2.LINE_AA)


def _cell(video: MotionVideo, t: int, scale: int, flow_inset: bool, max_speed: float
          ) -> np.ndarray:
    """(H * scale, W * scale * 3 // 2, 3) uint8 RGB: frame t of ``video`` annotated + panel.

    The panel right of the frame holds the flow t -> t + 1 (top, half size) and the frame
    index, the video name and the classes acting in the frame (bottom).
    """
    frame = video.frames[t]
    h, w = frame.shape[:2]
    img = np.ascontiguousarray(cv2.resize(frame, (w * scale, h * scale),
                                          interpolation=cv2.INTER_NEAREST))
    labels = []
    for boxes in video.idle_boxes:
        box = boxes[t]
        if np.all(np.isfinite(box)):
            labels.append((box, IDLE_COLOUR, 'idle', 1))
    for tube in video.tubes:
        hit = np.flatnonzero(tube.frames == t)
        if hit.size:
            labels.append((tube.boxes[hit[0]], CLASS_COLOURS[tube.label],
                           CLASS_NAMES[tube.label], max(scale // 2, 1)))
    for box, colour, _, thick in labels:
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in box)
        cv2.rectangle(img, (x1, y1), (max(x2 - 1, x1), max(y2 - 1, y1)), colour, thick)
    for box, colour, text, _ in labels:
        _label(img, text, int(round(float(box[0]) * scale)),
               int(round(float(box[1]) * scale)) - 1, colour)

    pw, ph = w * scale // 2, h * scale
    panel = np.full((ph, pw, 3), 24, np.uint8)
    y = 12
    if flow_inset and video.flows.shape[0]:
        ft = min(t, video.flows.shape[0] - 1)
        th = max(h * scale // 2, 1)
        panel[:th] = cv2.resize(flow_to_rgb(video.flows[ft], max_speed), (pw, th),
                                interpolation=cv2.INTER_AREA)
        _text(panel, f'flow {ft}>{ft + 1}', 2, th - 4)
        y = th + 12
    _text(panel, f't={t}', 2, y)
    _text(panel, video.name, 2, y + 12)
    y += 24
    for _, colour, text, _ in labels[::-1]:
        if y >= ph - 2:
            break
        _text(panel, text, 2, y, colour)
        y += 12
    return np.concatenate([img, panel], 1)


def grid_image(videos: Sequence[MotionVideo], frames_per_video: int = 4,
               scale: int | None = None, flow_inset: bool = True) -> np.ndarray:
    """Draw a grid of annotated frames: one row per video, evenly spaced frames per row.

    Args:
        videos: N videos of one frame size H x W.
        frames_per_video: F frames per row, evenly spaced from the first to the last.
        scale: integer up-scaling of every frame; None: enough for about 256 pixels.
        flow_inset: draw the colour-coded flow to the next frame in each cell's corner.

    Returns:
        (N * H * scale, F * (W * scale + W * scale // 2), 3) uint8 RGB image: per frame the
        annotated frame and, right of it, a panel with the flow to the next frame (top) and
        the frame index, the video name and the acting classes; rows are separated by 1-pixel
        dark lines drawn over their top edges.
    """
    videos = list(videos)
    if not videos:
        raise ValueError('grid_image: expected at least one video')
    if any(not isinstance(v, MotionVideo) for v in videos):
        raise TypeError('grid_image: expected MotionVideo items')
    if isinstance(frames_per_video, bool) or not isinstance(frames_per_video, int) or \
            frames_per_video < 1:
        raise ValueError(f'grid_image: expected frames_per_video >= 1, got {frames_per_video!r}')
    sizes = {v.frames.shape[1:3] for v in videos}
    if len(sizes) != 1:
        raise ValueError(f'grid_image: expected videos of one frame size, got {sorted(sizes)}')
    h, w = sizes.pop()
    if scale is None:
        scale = max(1, int(round(256 / max(h, w))))
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f'grid_image: expected an int scale >= 1, got {scale!r}')
    rows = []
    for video in videos:
        times = np.unique(np.linspace(0, video.num_frames - 1, frames_per_video).round())
        times = np.resize(times.astype(int), frames_per_video)  # short videos repeat frames
        max_speed = max(float(np.percentile(np.linalg.norm(video.flows, axis=-1), 99)), 1.0)
        rows.append(np.concatenate([_cell(video, int(t), scale, flow_inset, max_speed)
                                    for t in times], 1))
    grid = np.concatenate(rows, 0)
    for r in range(1, len(videos)):
        grid[r * h * scale] = 32
    return grid
