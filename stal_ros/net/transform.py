# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Camera clips in, camera-pixel detections out: what surrounds the network (not an nn.Module).

As torchvision's ``GeneralizedRCNNTransform`` beside its detectors: ``to_batch`` checks the
clips users hand over (the public boundary of ``Detector.detect``), converts numpy to a float
tensor on the model's device and resizes every camera's frames to the S x S network input
(SSD style: the aspect ratio is not kept); ``to_detections`` maps the boxes of each image back
to that camera's pixels.  Letters: N clips (cameras), T frames, H x W camera size, S input
side, D boxes, C foreground classes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from stal_ros.net.postprocess import ImageBoxes
from stal_ros.structures import Detections


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize (N, C, H, W) images to ``size`` = (h, w), antialiased when shrinking."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = images.shape[-2] > size[0] or images.shape[-1] > size[1]
    return F.interpolate(images, size=tuple(size), mode='bilinear', align_corners=False,
                         antialias=shrink)


class ClipTransform:
    """numpy clips <-> network tensors for a model of input side S and T-frame clips.

    Args:
        input_size: S.
        num_frames: T.
        target_index: index of the frame the model localises (checked against ``Clip``s).

    """

    def __init__(self, *, input_size: int, num_frames: int, target_index: int) -> None:
        self.input_size = int(input_size)
        self.num_frames = int(num_frames)
        self.target_index = int(target_index)

    def to_batch(self, clips: Sequence[Any],
                 device: torch.device | str) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Check the clips and stack them, resized, into one batch.

        Args:
            clips: N clips, each a (T, H, W, 3) uint8 RGB array, a sequence of T (H, W, 3)
                uint8 arrays, or a ``structures.Clip``; H, W may differ between clips.
            device: where the batch goes.

        Returns:
            (N, T, 3, S, S) float batch in [0, 1] on ``device``, and the N (H, W).

        Raises:
            TypeError, ValueError: naming the clip and what was expected.

        """
        if isinstance(clips, np.ndarray) or not isinstance(clips, Sequence):
            raise TypeError(f'detect: expected a sequence of clips (one per camera), got '
                            f'{type(clips).__name__}')
        if len(clips) == 0:
            raise ValueError('detect: expected at least one clip, got 0')
        s = self.input_size
        batch, sizes = [], []
        for i, clip in enumerate(clips):
            frames = self._check(i, clip)
            sizes.append((int(frames.shape[1]), int(frames.shape[2])))
            x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)     # (T, H, W, 3)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)                      # (T, 3, H, W)
            batch.append(resize_images(x, (s, s)))                             # (T, 3, S, S)
        return torch.stack(batch), sizes

    def to_detections(self, results: Sequence[ImageBoxes],
                      sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Normalised boxes of N images -> N ``Detections`` in each camera's pixels.

        Args:
            results: N ``ImageBoxes`` (boxes (D, 4) normalised xyxy).
            sizes: the N camera (H, W) the clips came with.

        Returns:
            N ``Detections``: boxes (D, 4) float32 continuous pixel xyxy within [0, W] x
            [0, H], scores (D,), labels (D,), class_scores (D, C).

        """
        out = []
        for res, (height, width) in zip(results, sizes):
            scale = res.boxes.new_tensor([width, height, width, height])
            out.append(Detections(
                boxes=(res.boxes * scale).cpu().numpy(), scores=res.scores.cpu().numpy(),
                labels=res.labels.cpu().numpy(), class_scores=res.class_scores.cpu().numpy()))
        return out

    def _check(self, index: int, clip: Any) -> np.ndarray:
        name = f'detect: clips[{index}]'
        if hasattr(clip, 'frames') and hasattr(clip, 'target_index'):
            if clip.target_index != self.target_index:
                raise ValueError(f'{name}: expected target_index {self.target_index} (frames '
                                 f'mode of this model), got {clip.target_index}')
            clip = clip.frames
        if isinstance(clip, (list, tuple)):
            for t, frame in enumerate(clip):
                if not isinstance(frame, np.ndarray):
                    raise TypeError(f'{name}[{t}]: expected a numpy.ndarray (H, W, 3) uint8, '
                                    f'got {type(frame).__name__}')
            shapes = [f.shape for f in clip]
            if len(set(shapes)) > 1:
                raise ValueError(f'{name}: expected frames of one size, got shapes {shapes}')
            if clip and clip[0].ndim != 3:
                raise ValueError(f'{name}[0]: expected shape (H, W, 3), got {clip[0].shape}')
            clip = np.stack(clip) if clip else np.zeros((0, 0, 0, 3), np.uint8)
        if not isinstance(clip, np.ndarray):
            raise TypeError(f'{name}: expected a numpy.ndarray (T, H, W, 3) uint8, got '
                            f'{type(clip).__name__}')
        if clip.dtype != np.uint8:
            raise TypeError(f'{name}: expected dtype uint8, got {clip.dtype}')
        if clip.ndim != 4 or clip.shape[3] != 3:
            raise ValueError(f'{name}: expected shape (T, H, W, 3) = ({self.num_frames}, H, W, '
                             f'3), got {clip.shape}')
        if clip.shape[0] != self.num_frames:
            raise ValueError(f'{name}: expected {self.num_frames} frames, got {clip.shape[0]}')
        if clip.shape[1] == 0 or clip.shape[2] == 0:
            raise ValueError(f'{name}: expected a non-empty image, got shape {clip.shape}')
        return clip
