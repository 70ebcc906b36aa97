# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Training losses: SSD MultiBox loss and the total loss of paper eq. 8.

L = L_conf + L_reg + w_flow * L_flow (eq. 8, w_flow = 1 in the paper):

* matching (SSD): first a bipartite step gives every ground-truth box its own prior (the
  highest-IoU (box, prior) pair of those still free, repeatedly, as the original Caffe SSD's
  BIPARTITE match; the loop of the PyTorch ports lets a box lose its only prior to another box
  that shares it), then every other prior takes the box it overlaps most and is positive when
  that IoU is >= 0.5.
* L_reg: smooth L1 (beta 1) on the encoded offsets (variances 0.1/0.2) of positives.
* L_conf: softmax cross-entropy on positives and on the hardest negatives, 3 per positive
  (hard-negative mining); both terms are divided by the number of positives in the batch.
* L_flow: the flow subnet's multiscale loss (paper eq. 1, ``flow_loss.multiscale_flow_loss``)
  summed over the K - 1 frame pairs that have ground-truth flow; added only when the flow
  subnet is learned and ground truth is given.

Targets: per image, boxes (G, 4) xyxy normalised to [0, 1] of the network input, each with
positive width and height (degenerate or non-finite boxes are rejected, naming the image and
the box), and labels (G,) int64 foreground class index in [0, K - 1); the loss adds 1 (0 is
background).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, TYPE_CHECKING

import torch
from torch import nn, Tensor
import torch.distributed as dist
import torch.nn.functional as F

from torchvision.ops import box_iou

from stal_ros.config import DetectorConfig
from stal_ros.net.box_coder import BoxCoder, cxcywh_to_xyxy
from stal_ros.net.flow_loss import check_flow, multiscale_flow_loss

if TYPE_CHECKING:
    from stal_ros.net.detector import DetectorOutput
    from stal_ros.net.flow import MotionOutput


def match(gt_boxes: Tensor, gt_labels: Tensor, priors: Tensor, threshold: float,
          box_coder: BoxCoder) -> tuple[Tensor, Tensor]:
    """Match one image's ground truth to the priors (SSD, with the bipartite step).

    Args:
        gt_boxes: (G, 4) normalised xyxy with positive width and height.
        gt_labels: (G,) int64 foreground index in [0, K - 1).
        priors: (P, 4) normalised cxcywh, P >= G.
        threshold: IoU at or above which a prior is positive.
        box_coder: the offsets' encoding.

    Returns:
        loc_target (P, 4) encoded offsets, conf_target (P,) int64 class (0 = background).

    """
    num_priors = priors.shape[0]
    if gt_boxes.numel() == 0:
        return priors.new_zeros(num_priors, 4), torch.zeros(num_priors, dtype=torch.long,
                                                            device=priors.device)
    overlaps = box_iou(gt_boxes, cxcywh_to_xyxy(priors))                 # (G, P)
    best_gt_overlap, best_gt = overlaps.max(dim=0)                       # (P,)
    # Bipartite step: the best (box, prior) pair overall, then the best among the boxes and
    # priors still free, G times, so every box keeps a prior of its own.
    free = overlaps.clone()
    num_gt = gt_boxes.shape[0]
    for _ in range(min(num_gt, num_priors)):
        flat = int(free.argmax())
        g, p = divmod(flat, num_priors)
        best_gt[p] = g
        best_gt_overlap[p] = 2.0                                          # always positive
        free[g, :] = -1.0
        free[:, p] = -1.0
    conf_target = gt_labels[best_gt].long() + 1
    conf_target[best_gt_overlap < threshold] = 0
    loc_target = box_coder.encode(gt_boxes[best_gt], priors)
    return loc_target, conf_target


def check_targets(index: int, boxes: Tensor, labels: Tensor, num_classes: int) -> None:
    """Reject targets that cannot be matched, naming the image, the box and the problem."""
    where = f'MultiBoxLoss: targets[{index}]'
    if boxes.numel() and (boxes.dim() != 2 or boxes.shape[1] != 4):
        raise ValueError(f'{where} boxes: expected (G, 4), got {tuple(boxes.shape)}')
    boxes = boxes.reshape(-1, 4)
    if labels.reshape(-1).shape[0] != boxes.shape[0]:
        raise ValueError(f'{where} labels: expected ({boxes.shape[0]},), got '
                         f'{tuple(labels.shape)}')
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes - 1):
        raise ValueError(f'{where} labels: expected foreground indices in [0, '
                         f'{num_classes - 1}), got {labels.tolist()}')
    bad = ~torch.isfinite(boxes).all(dim=1) | (boxes[:, 2] <= boxes[:, 0]) \
        | (boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        g = int(bad.nonzero()[0])
        raise ValueError(f'{where} boxes[{g}] = {boxes[g].tolist()}: expected finite '
                         'normalised xyxy with x2 > x1 and y2 > y1 (a degenerate box cannot be '
                         'matched to a prior)')


class MultiBoxLoss(nn.Module):
    """SSD MultiBox loss: smooth L1 on positives, CE with hard-negative mining."""

    def __init__(self, variances: Sequence[float], iou_threshold: float = 0.5,
                 neg_pos_ratio: int = 3) -> None:
        super().__init__()
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f'MultiBoxLoss: expected iou_threshold in (0, 1], got '
                             f'{iou_threshold}')
        if neg_pos_ratio < 0:
            raise ValueError(f'MultiBoxLoss: expected neg_pos_ratio >= 0, got {neg_pos_ratio}')
        self.box_coder = BoxCoder(variances)
        self.iou_threshold = iou_threshold
        self.neg_pos_ratio = neg_pos_ratio

    def forward(self, loc: Tensor, conf: Tensor, priors: Tensor,
                targets: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        """Loss of a batch.

        Args:
            loc: (N, P, 4) predicted offsets.
            conf: (N, P, K) class logits.
            priors: (P, 4) normalised cxcywh.
            targets: N pairs (boxes (G, 4) normalised xyxy, labels (G,) foreground index).

        Returns:
            (L_reg, L_conf), each a scalar divided by the number of positives (at least 1; under
            torch.distributed, the positives of all processes divided by their number).

        """
        n, p, k = conf.shape
        if loc.shape != (n, p, 4) or priors.shape != (p, 4):
            raise ValueError(f'MultiBoxLoss: expected loc (N, P, 4), conf (N, P, K), priors '
                             f'(P, 4); got {tuple(loc.shape)}, {tuple(conf.shape)}, '
                             f'{tuple(priors.shape)}')
        if len(targets) != n:
            raise ValueError(f'MultiBoxLoss: expected {n} targets, got {len(targets)}')
        loc_t, conf_t = [], []
        priors = priors.float()
        for i, (boxes, labels) in enumerate(targets):
            boxes = torch.as_tensor(boxes, dtype=torch.float32, device=loc.device)
            labels = torch.as_tensor(labels, dtype=torch.long, device=loc.device)
            check_targets(i, boxes, labels, k)
            lt, ct = match(boxes.reshape(-1, 4), labels.reshape(-1), priors,
                           self.iou_threshold, self.box_coder)
            loc_t.append(lt)
            conf_t.append(ct)
        loc_target = torch.stack(loc_t)                                    # (N, P, 4)
        conf_target = torch.stack(conf_t)                                  # (N, P)
        positive = conf_target > 0
        num_pos = positive.sum(dim=1, keepdim=True)                        # (N, 1)
        normaliser = num_pos.sum().float()
        if dist.is_available() and dist.is_initialized():
            # Data parallel: divide by the positives of the whole global batch (per process),
            # so that DDP's mean of the processes' gradients is the single-process gradient.
            dist.all_reduce(normaliser)
            normaliser = normaliser / dist.get_world_size()
        normaliser = normaliser.clamp_min(1.0)

        loss_reg = F.smooth_l1_loss(loc.float()[positive], loc_target[positive],
                                    reduction='sum')
        ce = F.cross_entropy(conf.float().reshape(-1, k), conf_target.reshape(-1),
                             reduction='none').view(n, p)                  # (N, P)
        # Hard-negative mining: rank negatives by their CE, keep 3 per positive.
        mining = ce.detach().masked_fill(positive, 0.0)
        order = mining.argsort(dim=1, descending=True)
        rank = order.argsort(dim=1)
        num_neg = (self.neg_pos_ratio * num_pos).clamp(max=p - 1)
        negative = (rank < num_neg) & ~positive
        loss_conf = ce[positive | negative].sum()
        return loss_reg / normaliser, loss_conf / normaliser


class LossTerms(NamedTuple):
    """Terms of eq. 8 (scalars): total = conf + reg + flow_weight * flow."""

    total: Tensor
    conf: Tensor
    reg: Tensor
    flow: Tensor


class DetectionLoss(nn.Module):
    """Total loss of eq. 8 on a ``DetectorOutput``; the flow term needs ground-truth flow.

    ``variances`` and ``flow_level_weights`` come from the model's config (``from_config``).
    ``flow_reduction`` is passed to ``multiscale_flow_loss``: ``'sum'`` over pixels as in eq. 1
    (the default), or ``'mean'`` to keep the flow term on the scale of the detection terms.
    """

    def __init__(self, variances: Sequence[float], flow_level_weights: Sequence[float],
                 flow_weight: float = 1.0, iou_threshold: float = 0.5,
                 neg_pos_ratio: int = 3, flow_reduction: str = 'sum') -> None:
        super().__init__()
        self.multibox = MultiBoxLoss(variances, iou_threshold, neg_pos_ratio)
        self.flow_level_weights = tuple(flow_level_weights)
        self.flow_weight = float(flow_weight)
        self.flow_reduction = flow_reduction

    @classmethod
    def from_config(cls, config: DetectorConfig, **kwargs: float) -> 'DetectionLoss':
        """Take the variances and flow-level weights from a ``DetectorConfig``."""
        return cls(config.head.variances, config.flow.loss_weights, **kwargs)

    def forward(self, output: 'DetectorOutput', targets: Sequence[tuple[Tensor, Tensor]],
                gt_flows: Sequence[Tensor | None] | None = None) -> LossTerms:
        """Loss of a batch.

        Args:
            output: ``detector.DetectorOutput`` (loc (N, P, 4), conf (N, P, K), motion,
                priors (P, 4)).
            targets: N pairs (boxes (G, 4) normalised xyxy, labels (G,)).
            gt_flows: optional T - 1 ground-truth flows (N, 2, H, W) (or None for a pair
                without one), oldest pair first, in the convention of ``flow_loss``.

        Returns:
            ``LossTerms``; ``flow`` is 0 without ground truth or with a classical flow.

        """
        reg, conf = self.multibox(output.loc, output.conf, output.priors, targets)
        flow = self._flow(output.motion, gt_flows, output.loc.shape[0], reg.new_zeros(()))
        total = conf + reg + self.flow_weight * flow
        return LossTerms(total, conf, reg, flow)

    def flow_only(self, motion: 'MotionOutput', gt_flows: Sequence[Tensor | None]) -> LossTerms:
        """Compute the flow term alone (flow pre-training): total = flow_weight * L_flow.

        Args:
            motion: the motion stream's output (its pyramids).
            gt_flows: T - 1 ground-truth flows (N, 2, H, W), oldest pair first.

        """
        batch = motion.image.shape[0]
        zero = motion.image.new_zeros(())
        flow = self._flow(motion, gt_flows, batch, zero)
        return LossTerms(self.flow_weight * flow, zero, zero, flow)

    def _flow(self, motion: 'MotionOutput | None', gt_flows: Sequence[Tensor | None] | None,
              batch: int, zero: Tensor) -> Tensor:
        flow = zero
        if gt_flows is not None and motion is not None:
            if len(gt_flows) != len(motion.pyramids):
                raise ValueError(f'DetectionLoss: expected {len(motion.pyramids)} ground-truth '
                                 f'flows (one per frame pair), got {len(gt_flows)}')
            for p, (pyramid, gt) in enumerate(zip(motion.pyramids, gt_flows)):
                if gt is not None:
                    check_flow(f'DetectionLoss gt_flows[{p}]', gt)
                    if gt.shape[0] != batch:
                        raise ValueError(f'DetectionLoss: expected gt_flows[{p}] with batch '
                                         f'{batch}, got {tuple(gt.shape)}')
                if gt is not None and pyramid:
                    flow = flow + multiscale_flow_loss(pyramid, gt, self.flow_level_weights,
                                                       reduction=self.flow_reduction)
        return flow
