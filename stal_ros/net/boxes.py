# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑥ Box geometry, SSD offset encoding, and decoding of head outputs into ``Detections``.

Formats (function names say when they change): ``xyxy`` corners and ``cxcywh`` centre/size.
Priors and encoded offsets live in the normalised [0, 1] frame of the network input; the
detections handed out are absolute pixel xyxy float32 in each source image.

Encoding (SSD, paper §3.4, variances v = (0.1, 0.2)):
    t_xy = (c_gt - c_prior) / (v_0 * wh_prior),  t_wh = log(wh_gt / wh_prior) / v_1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, box_iou

from stal_ros.config import PostprocessConfig
from stal_ros.structures import Detections

# Offsets whose exp() would overflow are clamped (torchvision uses log(1000 / 16)).
_MAX_LOG_SCALE = float(np.log(1000.0 / 16))


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) x1, y1, x2, y2 -> (..., 4) cx, cy, w, h."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) cx, cy, w, h -> (..., 4) x1, y1, x2, y2."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """(M, 4) and (P, 4) xyxy -> (M, P) intersection over union (torchvision's box_iou)."""
    return box_iou(boxes_a, boxes_b)


def encode(boxes: torch.Tensor, priors: torch.Tensor,
           variances: Sequence[float]) -> torch.Tensor:
    """Encode matched boxes (..., P, 4) normalised xyxy against priors (P, 4) cxcywh.

    Returns:
        (..., P, 4) offsets (t_cx, t_cy, t_w, t_h).
    """
    gt = xyxy_to_cxcywh(boxes)
    centre = (gt[..., :2] - priors[:, :2]) / (variances[0] * priors[:, 2:])
    # Degenerate (zero-size) boxes would give log(0); they never match a prior in practice.
    size = torch.log(gt[..., 2:].clamp_min(1e-8) / priors[:, 2:]) / variances[1]
    return torch.cat([centre, size], dim=-1)


def decode(offsets: torch.Tensor, priors: torch.Tensor,
           variances: Sequence[float]) -> torch.Tensor:
    """Decode offsets (..., P, 4) against priors (P, 4) cxcywh into normalised xyxy (..., P, 4)."""
    centre = priors[:, :2] + offsets[..., :2] * variances[0] * priors[:, 2:]
    log_scale = (offsets[..., 2:] * variances[1]).clamp(max=_MAX_LOG_SCALE)
    size = priors[:, 2:] * torch.exp(log_scale)
    return cxcywh_to_xyxy(torch.cat([centre, size], dim=-1))


def nms_per_class(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                  iou_threshold: float, top_k: int | None = None) -> torch.Tensor:
    """Class-wise NMS: (D, 4) xyxy, (D,) scores, (D,) labels -> kept indices, best first.

    Boxes of different labels never suppress each other (torchvision's ``batched_nms``);
    with ``top_k`` at most that many boxes per label are kept.
    """
    keep = batched_nms(boxes.float(), scores.float(), labels, iou_threshold)
    if top_k is not None and keep.numel():
        kept_labels = labels[keep]
        onehot = F.one_hot(kept_labels - kept_labels.min())
        rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # rank of each box within its label
        keep = keep[rank < top_k]
    return keep


def postprocess(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor,
                image_sizes: Sequence[tuple[int, int]], variances: Sequence[float],
                config: PostprocessConfig) -> list[Detections]:
    """Head outputs -> one ``Detections`` per image, in that image's pixels.

    Args:
        loc: (N, P, 4) encoded offsets.
        conf: (N, P, K) class logits, index 0 background.
        priors: (P, 4) normalised cxcywh.
        image_sizes: N (height, width) of the source images the boxes are scaled to.
        variances: the two encoding variances.
        config: score threshold, NMS IoU, per-class candidates / kept boxes, max per image.

    Returns:
        N ``Detections``: boxes (D, 4) float32 pixel xyxy clipped to the image, scores (D,),
        labels (D,) foreground index in [0, K - 1), class_scores (D, K - 1) softmax scores of
        the box's prior.

    """
    if loc.dim() != 3 or loc.shape[-1] != 4 or conf.dim() != 3 or \
            conf.shape[:2] != loc.shape[:2] or priors.shape != (loc.shape[1], 4):
        raise ValueError(f'postprocess: expected loc (N, P, 4), conf (N, P, K), priors (P, 4); '
                         f'got {tuple(loc.shape)}, {tuple(conf.shape)}, {tuple(priors.shape)}')
    if len(image_sizes) != loc.shape[0]:
        raise ValueError(f'postprocess: expected {loc.shape[0]} image sizes, got '
                         f'{len(image_sizes)}')
    boxes = decode(loc.float(), priors.float(), variances).clamp(0.0, 1.0)   # (N, P, 4)
    probs = torch.softmax(conf.float(), dim=-1)[..., 1:]                      # (N, P, K-1)
    num_fg = probs.shape[-1]
    out = []
    for n, (height, width) in enumerate(image_sizes):
        scale = boxes.new_tensor([width, height, width, height])
        scores = probs[n]                                                     # (P, K-1)
        k = min(config.pre_nms_top_k, scores.shape[0])
        top_scores, top_priors = scores.t().topk(k, dim=1)                    # (K-1, k)
        labels = torch.arange(num_fg, device=scores.device).view(-1, 1).expand(-1, k)
        mask = top_scores > config.score_threshold
        cand_scores, cand_priors, cand_labels = top_scores[mask], top_priors[mask], labels[mask]
        cand_boxes = boxes[n, cand_priors] * scale                            # (D', 4)
        keep = nms_per_class(cand_boxes, cand_scores, cand_labels, config.nms_iou,
                             config.top_k)[:config.max_detections]
        out.append(Detections(
            boxes=cand_boxes[keep].cpu().numpy(), scores=cand_scores[keep].cpu().numpy(),
            labels=cand_labels[keep].cpu().numpy(),
            class_scores=scores[cand_priors[keep]].cpu().numpy()))
    return out
