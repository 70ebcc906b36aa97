# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Training clips: K frames of a video, the boxes of the target frame and the exact flows.

``ClipDataset`` turns videos (anything shaped like ``motion.MotionVideo``: ``frames``
(T, H, W, 3) uint8, ``flows`` (T - 1, H, W, 2) or None, ``tubes`` with ``label``, ``frames``,
``boxes``) into network-ready samples.  Every (video, target frame) pair with a full clip is one
sample; the clip is frames t - K + 1 .. t for the causal mode (target index K - 1) or centred
on t.  With ``pad`` the first and last frames are samples too: their clips repeat the video's
first or last frame where they reach past it (as ``FrameBuffer`` fills a stream's ends), and the
exact flow of such a repeated pair is zero.  Augmentation (``AugmentConfig``) is drawn once
per sample and applied identically to all K frames, their boxes and their flows: photometric
jitter, a random crop, a left-right mirror (flow x negated, *_left / *_right classes swapped)
and an RGB channel permutation.  Samples are resized to the S x S network input here, so
batches stack; flows are rescaled with their grid.

Letters: T frames (K of a clip), S input side, G boxes in the target frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from stal_ros.config import AugmentConfig


@dataclass(frozen=True)
class ClipSample:
    """One training sample.

    Attributes:
        clip: (K, 3, S, S) float32 RGB in [0, 1], oldest frame first.
        boxes: (G, 4) float32 normalised xyxy of the actors acting in the target frame.
        labels: (G,) int64 foreground class indices.
        flows: (K - 1, 2, S, S) float32 exact flow of each adjacent pair in pixels of the S x S
            grid (x, y), or None when the videos carry no flow.

    """

    clip: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    flows: torch.Tensor | None


def mirror_map(class_names: Sequence[str]) -> np.ndarray | None:
    """Label permutation of a left-right mirror, or None if a directional class lacks its twin.

    ``*_left`` and ``*_right`` names swap; other classes map to themselves.  Entries are -1 for
    classes whose mirror image is not a class (such clips are not mirrored).
    """
    index = {name: i for i, name in enumerate(class_names)}
    out = np.arange(len(class_names))
    for i, name in enumerate(class_names):
        for a, b in (('_left', '_right'), ('_right', '_left')):
            if name.endswith(a):
                out[i] = index.get(name[:-len(a)] + b, -1)
    return out


class ClipDataset(torch.utils.data.Dataset):
    """K-frame clips of a set of videos for training (see the module docstring).

    Args:
        videos: the videos (``frames``, ``flows``, ``tubes``).
        class_names: the foreground classes (labels index it).
        num_frames: K.
        target_index: index of the localised frame in the clip (K - 1 causal, K // 2 centred).
        input_size: S.
        augment: the augmentation, or None for none (evaluation).
        seed: seed of the augmentation; sample i of epoch e draws from (seed, e, i).
        with_flows: give the exact flows (for the flow loss of a learned flow subnet).
        pad: also sample the frames without a full clip, filling the clip with the first or
            last frame (see the module docstring).

    """

    def __init__(self, videos: Sequence[Any], *, class_names: Sequence[str], num_frames: int,
                 target_index: int, input_size: int, augment: AugmentConfig | None,
                 seed: int = 0, with_flows: bool = True, pad: bool = False) -> None:
        if not videos:
            raise ValueError('ClipDataset: expected at least one video, got none')
        self.videos = list(videos)
        self.class_names = tuple(class_names)
        self.num_frames = int(num_frames)
        self.target_index = int(target_index)
        self.input_size = int(input_size)
        self.augment = augment
        self.seed = int(seed)
        self.with_flows = bool(with_flows)
        self.pad = bool(pad)
        self.epoch = 0
        self._mirror = mirror_map(self.class_names)
        before = self.target_index
        after = self.num_frames - 1 - self.target_index
        self.index: list[tuple[int, int]] = []
        self._targets: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []
        for v, video in enumerate(self.videos):
            t_frames = video.frames.shape[0]
            if t_frames < self.num_frames:
                raise ValueError(f'ClipDataset: video {getattr(video, "name", v)!r} has '
                                 f'{t_frames} frames, expected at least {self.num_frames}')
            per_frame: dict[int, list[tuple[np.ndarray, int]]] = {}
            for tube in video.tubes:
                for f, box in zip(np.asarray(tube.frames).tolist(), np.asarray(tube.boxes)):
                    per_frame.setdefault(int(f), []).append((box, int(tube.label)))
            self._targets.append({
                f: (np.array([b for b, _ in items], np.float32).reshape(-1, 4),
                    np.array([k for _, k in items], np.int64)) for f, items in per_frame.items()})
            self.index += [(v, t) for t in (range(t_frames) if self.pad
                                            else range(before, t_frames - after))]

    def __len__(self) -> int:
        """Return the number of (video, target frame) samples."""
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Draw new augmentations (call once per pass over the data)."""
        self.epoch = int(epoch)

    def targets(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (G, 4) pixel xyxy and labels (G,) of sample ``i``'s target frame."""
        v, t = self.index[i]
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        return self._targets[v].get(t, empty)

    def __getitem__(self, i: int) -> ClipSample:
        """Sample ``i``, augmented with the generator of (seed, epoch, i)."""
        v, t = self.index[i]
        video = self.videos[v]
        frames, flows = self._clip(video, t - self.target_index)
        boxes, labels = self.targets(i)
        boxes, labels = boxes.copy(), labels.copy()
        h, w = frames.shape[1:3]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        aug = self.augment
        frames = frames.astype(np.float32) / 255.0
        if aug is not None:
            frames, boxes, labels, flows, (h, w) = self._augment(rng, aug, frames, boxes,
                                                                 labels, flows)
        s = self.input_size
        frames = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA
                                      if s < min(h, w) else cv2.INTER_LINEAR) for f in frames])
        if flows is not None:
            scale = np.array([s / w, s / h], np.float32)
            flows = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_LINEAR) * scale
                              for f in flows])
        boxes = boxes / np.array([w, h, w, h], np.float32)
        return ClipSample(
            clip=torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
            boxes=torch.from_numpy(np.clip(boxes, 0.0, 1.0)),
            labels=torch.from_numpy(labels),
            flows=None if flows is None else torch.from_numpy(
                np.ascontiguousarray(flows.transpose(0, 3, 1, 2))))

    def _clip(self, video: Any, first: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return frames (K, H, W, 3) and flows (K - 1, H, W, 2) or None of the clip at ``first``.

        Frames past an end of the video repeat its first or last frame (``pad``).
        """
        at = np.clip(np.arange(first, first + self.num_frames), 0, video.frames.shape[0] - 1)
        frames = np.asarray(video.frames)[at]
        if not self.with_flows or getattr(video, 'flows', None) is None:
            return frames, None
        flows = np.zeros((self.num_frames - 1,) + frames.shape[1:3] + (2,), np.float32)
        for j in range(self.num_frames - 1):
            if at[j + 1] != at[j]:                 # a repeated frame has not moved
                flows[j] = video.flows[at[j]]
        return frames, flows

    def _augment(self, rng: np.random.Generator, aug: AugmentConfig, frames: np.ndarray,
                 boxes: np.ndarray, labels: np.ndarray, flows: np.ndarray | None):
        """One draw of the augmentation, applied to all K frames, the boxes and the flows."""
        k, h, w = frames.shape[:3]
        if aug.crop_min_scale < 1.0:
            ch = int(round(h * rng.uniform(aug.crop_min_scale, 1.0)))
            cw = int(round(w * rng.uniform(aug.crop_min_scale, 1.0)))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            frames = frames[:, y0:y0 + ch, x0:x0 + cw]
            if flows is not None:
                flows = flows[:, y0:y0 + ch, x0:x0 + cw]     # crops move no vector
            if boxes.size:
                area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                boxes = boxes - np.array([x0, y0, x0, y0], np.float32)
                boxes = np.clip(boxes, 0.0, [cw, ch, cw, ch]).astype(np.float32)
                kept = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                # An actor mostly cut away is dropped (as SSD's crops keep box centres inside).
                keep = kept >= 0.4 * np.maximum(area, 1e-6)
                boxes, labels = boxes[keep], labels[keep]
            h, w = ch, cw
        if aug.mirror and rng.random() < 0.5 and np.all(self._mirror[labels] >= 0):
            frames = frames[:, :, ::-1]
            if flows is not None:
                flows = flows[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]],
                             axis=1).astype(np.float32).reshape(-1, 4)
            labels = self._mirror[labels]
        if aug.photometric > 0:
            p = aug.photometric
            brightness = rng.uniform(-0.5, 0.5) * p
            contrast = 1.0 + rng.uniform(-1.0, 1.0) * p
            saturation = 1.0 + rng.uniform(-1.0, 1.0) * p
            grey = frames.mean(axis=3, keepdims=True)
            frames = grey + (frames - grey) * saturation
            frames = (frames - 0.5) * contrast + 0.5 + brightness
            frames = np.clip(frames, 0.0, 1.0)
        if aug.channel_swap:
            frames = frames[..., rng.permutation(3)]
        return (np.ascontiguousarray(frames, np.float32), boxes, labels,
                None if flows is None else np.ascontiguousarray(flows, np.float32), (h, w))


Batch = tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor] | None]


def collate(samples: Sequence[ClipSample]) -> Batch:
    """Stack samples: clips (N, K, 3, S, S), N (boxes, labels), K - 1 flows (N, 2, S, S)."""
    clips = torch.stack([s.clip for s in samples])
    targets = [(s.boxes, s.labels) for s in samples]
    if any(s.flows is None for s in samples):
        return clips, targets, None
    flows = torch.stack([s.flows for s in samples])                    # (N, K-1, 2, S, S)
    return clips, targets, list(flows.unbind(1))
