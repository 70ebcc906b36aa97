# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑥ Box formats of the network and SSD's offset encoding (torchvision's ``BoxCoder`` role).

Formats (function names say when they change): ``xyxy`` corners and ``cxcywh`` centre/size.
Priors and encoded offsets live in the normalised [0, 1] frame of the network input, and only
here and in ``priors``; ``transform`` maps boxes to each camera's pixels.

Encoding (SSD, paper §3.4, variances v = (0.1, 0.2)):
    t_xy = (c_gt - c_prior) / (v_0 * wh_prior),  t_wh = log(wh_gt / wh_prior) / v_1.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

# Offsets whose exp() would overflow are clamped (torchvision uses log(1000 / 16)).
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) x1, y1, x2, y2 -> (..., 4) cx, cy, w, h."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) cx, cy, w, h -> (..., 4) x1, y1, x2, y2."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


class BoxCoder:
    """SSD offset encoding against priors with the two variances (centre, size)."""

    def __init__(self, variances: Sequence[float]) -> None:
        self.variances = (float(variances[0]), float(variances[1]))

    def encode(self, boxes: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """Encode matched boxes (..., P, 4) normalised xyxy against priors (P, 4) cxcywh.

        The boxes must have positive width and height (the loss rejects degenerate targets).

        Returns:
            (..., P, 4) offsets (t_cx, t_cy, t_w, t_h).
        """
        gt = xyxy_to_cxcywh(boxes)
        centre = (gt[..., :2] - priors[:, :2]) / (self.variances[0] * priors[:, 2:])
        size = torch.log(gt[..., 2:] / priors[:, 2:]) / self.variances[1]
        return torch.cat([centre, size], dim=-1)

    def decode(self, offsets: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """Decode offsets (..., P, 4) against priors (P, 4) cxcywh into normalised xyxy."""
        centre = priors[:, :2] + offsets[..., :2] * self.variances[0] * priors[:, 2:]
        log_scale = (offsets[..., 2:] * self.variances[1]).clamp(max=_MAX_LOG_SCALE)
        size = priors[:, 2:] * torch.exp(log_scale)
        return cxcywh_to_xyxy(torch.cat([centre, size], dim=-1))
