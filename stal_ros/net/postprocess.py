# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑥ Head outputs -> per-image boxes: decode, per-class threshold, NMS, top-k (SSD's Detect).

Everything stays in the normalised [0, 1] frame of the network input; ``transform`` maps the
boxes to each camera's pixels.  Letters: N images, P priors, K classes incl. background,
D kept boxes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms

from stal_ros.net.box_coder import BoxCoder


class ImageBoxes(NamedTuple):
    """Boxes kept in one image, best first within each class.

    Attributes:
        boxes: (D, 4) normalised xyxy clipped to [0, 1].
        scores: (D,) softmax score of ``labels``.
        labels: (D,) int64 foreground index in [0, K - 1).
        class_scores: (D, K - 1) softmax scores of every foreground class at the box's prior.

    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    class_scores: torch.Tensor


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


class Postprocessor:
    """Decode and filter the head outputs (plain values; ``build_detector`` fills them).

    Args:
        box_coder: the offsets' encoding.
        score_threshold: class scores at or below this are discarded before NMS.
        nms_iou: IoU threshold of the per-class NMS.
        pre_nms_top_k: highest-scoring candidates per class entering NMS.
        top_k: boxes kept per class after NMS.
        max_detections: boxes kept per image, highest scores first.

    """

    def __init__(self, *, box_coder: BoxCoder, score_threshold: float, nms_iou: float,
                 pre_nms_top_k: int, top_k: int, max_detections: int) -> None:
        self.box_coder = box_coder
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.pre_nms_top_k = pre_nms_top_k
        self.top_k = top_k
        self.max_detections = max_detections

    def __call__(self, loc: torch.Tensor, conf: torch.Tensor,
                 priors: torch.Tensor) -> list[ImageBoxes]:
        """Filter the boxes of a batch.

        Args:
            loc: (N, P, 4) encoded offsets.
            conf: (N, P, K) class logits, index 0 background.
            priors: (P, 4) normalised cxcywh.

        Returns:
            N ``ImageBoxes`` (float32, on the device of ``loc``).

        """
        boxes = self.box_coder.decode(loc.float(), priors.float()).clamp(0.0, 1.0)  # (N, P, 4)
        probs = torch.softmax(conf.float(), dim=-1)[..., 1:]                     # (N, P, K-1)
        num_fg = probs.shape[-1]
        k = min(self.pre_nms_top_k, probs.shape[1])
        labels = torch.arange(num_fg, device=probs.device).view(-1, 1).expand(-1, k)
        out = []
        for n in range(loc.shape[0]):
            scores = probs[n]                                                  # (P, K-1)
            top_scores, top_priors = scores.t().topk(k, dim=1)                 # (K-1, k)
            mask = top_scores > self.score_threshold
            cand_scores, cand_priors = top_scores[mask], top_priors[mask]
            cand_labels = labels[mask]
            cand_boxes = boxes[n, cand_priors]                                 # (D', 4)
            keep = nms_per_class(cand_boxes, cand_scores, cand_labels, self.nms_iou,
                                 self.top_k)[:self.max_detections]
            out.append(ImageBoxes(cand_boxes[keep], cand_scores[keep], cand_labels[keep],
                                  scores[cand_priors[keep]]))
        return out
