# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Annotated images: tube boxes, class names, scores, tube ids and short trails (OpenCV, ROS-free).

One colour per tube id (stable while the tube lives), so a viewer sees an actor keep its tube.
A box seen in this frame is drawn solid; a tube bridging a gap (its last box repeated) is drawn
thin.  The trail joins the centres of the tube's last boxes.
"""

from __future__ import annotations

from typing import Sequence
import zlib

import cv2
import numpy as np

from stal_ros.structures import Tube

# Well-separated colours (RGB), picked per tube id.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
           (0, 128, 128), (220, 190, 255), (170, 110, 40), (128, 0, 0), (170, 255, 195))


def tube_colour(tube_id: str) -> tuple[int, int, int]:
    """Return the RGB colour of a tube id (the same id always gets the same colour)."""
    return PALETTE[zlib.crc32(tube_id.encode()) % len(PALETTE)]


def render(frame: np.ndarray, tubes: Sequence[Tube], class_names: Sequence[str],
           stamp_ns: int | None = None, trail: int = 12) -> np.ndarray:
    """Draw the active tubes of one frame.

    Args:
        frame: (H, W, 3) uint8 RGB (not modified).
        tubes: the tubes to draw (typically ``LinkerStep.active``); boxes in pixel xyxy.
        class_names: label i is ``class_names[i]``.
        stamp_ns: the frame's stamp; a tube whose last box is from this frame is drawn solid,
            others (gap fills) thin.  None draws every tube solid.
        trail: how many of the last box centres to join (0: no trail).

    Returns:
        (H, W, 3) uint8 RGB, a new array.
    """
    out = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    height, width = out.shape[:2]
    scale = max(0.35, min(height, width) / 800.0)
    thick = max(1, round(min(height, width) / 300))
    for tube in tubes:
        if not len(tube.boxes):
            continue
        colour = tube_colour(tube.tube_id)
        seen = stamp_ns is None or (tube.last_stamp_ns == stamp_ns and bool(tube.observed[-1]))
        x1, y1, x2, y2 = (int(round(float(v))) for v in tube.boxes[-1])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick * 2 if seen else 1)
        if trail > 1:
            recent = tube.boxes[-trail:]
            centres = np.stack([(recent[:, 0] + recent[:, 2]) / 2,
                                (recent[:, 1] + recent[:, 3]) / 2], axis=1)  # (n, 2)
            cv2.polylines(out, [np.round(centres).astype(np.int32).reshape(-1, 1, 2)], False,
                          colour, thick)
        label = int(tube.label)
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        # The tube's number (its id without the camera prefix) keeps the label short.
        number = str(tube.tube_id).rsplit('/', 1)[-1]
        text = f'{number} {name} {float(tube.score):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(height - 1, y2 + th + 2)
        tx = max(0, min(x1, out.shape[1] - tw))  # keep the label inside the image
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw, ty + base // 2), colour, -1)
        cv2.putText(out, text, (tx, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return out
