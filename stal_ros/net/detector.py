# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The frame-level detector: ② motion stream, ③ shared backbone, ④ fusion, ⑤ head, ⑥ boxes.

Paper §3: the K-frame clip gives K - 1 adjacent-pair flows fused into an image-like tensor;
the SAME backbone weights run on the target RGB frame (spatial path) and on that flow image
(temporal path); the six pairs of maps are fused per scale and an SSD/RFB head predicts class
scores and box offsets for every prior.  ``STALDetector`` is composed from injected parts
(torchvision style); ``build_detector`` is the one entry point that fills them from a
``DetectorConfig`` and/or a checkpoint.

Frames: the target frame is the newest one in the default causal mode and the middle one in
the paper's centred mode (see ``frames.FrameBuffer``).  Camera images of any resolution and
aspect are resized to S x S (SSD style, the aspect is not kept) and boxes are mapped back to
each camera's pixels.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn, Tensor

from stal_ros.config import ConfigError, DetectorConfig, PostprocessConfig
from stal_ros.frames import FrameBuffer
from stal_ros.net.backbone import build_backbone, feature_sizes
from stal_ros.net.boxes import postprocess
from stal_ros.net.checkpoint import load_checkpoint, load_state
from stal_ros.net.flow import build_motion_stream, MotionOutput, MotionStream, resize_images
from stal_ros.net.fusion import build_fusion
from stal_ros.net.head import SSDHead
from stal_ros.net.priors import PriorBox
from stal_ros.structures import Detections

_AMP_DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class DetectorOutput(NamedTuple):
    """Raw outputs for training and decoding.

    Attributes:
        loc: (N, P, 4) encoded box offsets.
        conf: (N, P, K) class logits, index 0 background.
        motion: the motion stream's output (fused image, flows, pyramids), None without fusion.
        priors: (P, 4) normalised cxcywh default boxes matching ``loc``/``conf``.

    """

    loc: Tensor
    conf: Tensor
    motion: MotionOutput | None
    priors: Tensor


class STALDetector(nn.Module):
    """Flow + fusion action detector composed from its parts (paper §3)."""

    def __init__(self, *, motion: MotionStream | None, backbone: nn.Module, fusion: nn.Module,
                 head: SSDHead, priors: PriorBox, input_size: int, num_frames: int,
                 target_index: int, class_names: Sequence[str],
                 postprocess_config: PostprocessConfig,
                 rgb_mean: Sequence[float] = (0.485, 0.456, 0.406),
                 rgb_std: Sequence[float] = (0.229, 0.224, 0.225),
                 precision: str = 'fp32', channels_last: bool = False) -> None:
        super().__init__()
        if fusion.needs_flow and motion is None:
            raise ValueError('STALDetector: expected a motion stream for a fusion that needs '
                             'flow, got motion=None')
        if not 0 <= target_index < num_frames:
            raise ValueError(f'STALDetector: expected target_index in [0, {num_frames}), got '
                             f'{target_index}')
        if precision not in _AMP_DTYPES:
            raise ValueError(f'STALDetector: expected precision in {list(_AMP_DTYPES)}, got '
                             f'{precision!r}')
        if head.num_classes != len(class_names) + 1:
            raise ValueError(f'STALDetector: expected a head with {len(class_names) + 1} '
                             f'classes (background + class_names), got {head.num_classes}')
        self.motion = motion if fusion.needs_flow else None
        self.backbone = backbone
        self.fusion = fusion
        self.head = head
        self.priors = priors
        self.input_size = int(input_size)
        self.num_frames = int(num_frames)
        self.target_index = int(target_index)
        self.class_names = tuple(class_names)
        self.postprocess_config = postprocess_config
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.register_buffer('rgb_mean', torch.tensor(rgb_mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('rgb_std', torch.tensor(rgb_std).view(1, 3, 1, 1),
                             persistent=False)

    @property
    def num_classes(self) -> int:
        """Return K, classes including background."""
        return self.head.num_classes

    @property
    def device(self) -> torch.device:
        """Return the device of the parameters."""
        return next(self.parameters()).device

    def freeze_flow(self) -> None:
        """Freeze the flow subnet (paper §3.4: frozen until the detection loss is stable)."""
        if self.motion is not None:
            self.motion.freeze_flow()

    def unfreeze_flow(self) -> None:
        """Train the flow subnet end to end again."""
        if self.motion is not None:
            self.motion.unfreeze_flow()

    def _memory(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, clip: Tensor) -> DetectorOutput:
        """Run the network on a batch of clips.

        Args:
            clip: (N, T, 3, S, S) float RGB in [0, 1], oldest frame first, T = num_frames,
                S = input_size.

        Returns:
            ``DetectorOutput`` (loc (N, P, 4), conf (N, P, K), motion, priors (P, 4)).

        """
        self._check_clip(clip)
        s = self.input_size
        rgb = self._memory((clip[:, self.target_index] - self.rgb_mean) / self.rgb_std)
        motion = None
        if self.motion is None:
            fused = self.fusion(self.backbone(rgb), None)
        else:
            motion = self.motion(clip, (s, s))
            flow_image = self._memory(motion.image)
            if self.training:
                # Separate passes: batch-norm statistics must not mix RGB and flow images.
                maps_rgb, maps_flow = self.backbone(rgb), self.backbone(flow_image)
            else:
                # One pass over 2N images with the shared weights (paper §3.3.2).
                n = rgb.shape[0]
                both = self.backbone(torch.cat([rgb, flow_image.to(rgb.dtype)]))
                maps_rgb, maps_flow = [m[:n] for m in both], [m[n:] for m in both]
            fused = self.fusion(maps_rgb, maps_flow)
        loc, conf = self.head(fused)
        priors = self.priors(feature_sizes(fused), loc.device)
        if priors.shape[0] != loc.shape[1]:
            raise RuntimeError(f'STALDetector: {priors.shape[0]} priors but the head gave '
                               f'{loc.shape[1]} predictions (priors per cell disagree)')
        return DetectorOutput(loc, conf, motion, priors)

    def _check_clip(self, clip: Tensor) -> None:
        expected = f'(N, {self.num_frames}, 3, {self.input_size}, {self.input_size})'
        if not isinstance(clip, Tensor):
            raise TypeError(f'STALDetector: expected a torch.Tensor {expected}, got '
                            f'{type(clip).__name__}')
        if not clip.is_floating_point():
            raise TypeError(f'STALDetector: expected a floating-point clip in [0, 1], got '
                            f'{clip.dtype}')
        if (clip.dim() != 5 or clip.shape[0] == 0 or
                tuple(clip.shape[1:]) != (self.num_frames, 3, self.input_size, self.input_size)):
            raise ValueError(f'STALDetector: expected clip shape {expected} with N >= 1, got '
                             f'{tuple(clip.shape)}')

    def _autocast(self, device: torch.device) -> Any:
        dtype = _AMP_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def prepare(self, clips: Sequence[Any]) -> tuple[Tensor, list[tuple[int, int]]]:
        """Validate clips and resize them to one batch.

        Args:
            clips: N clips, each a (T, H, W, 3) uint8 RGB array, a sequence of T (H, W, 3)
                uint8 arrays, or a ``frames.Clip``; H, W may differ between clips.

        Returns:
            (N, T, 3, S, S) float batch in [0, 1] on the model's device, and the N (H, W).

        """
        if isinstance(clips, np.ndarray) or not isinstance(clips, Sequence):
            raise TypeError(f'detect: expected a sequence of clips (one per camera), got '
                            f'{type(clips).__name__}')
        if len(clips) == 0:
            raise ValueError('detect: expected at least one clip, got 0')
        device = self.device
        batch, sizes = [], []
        for i, clip in enumerate(clips):
            frames = self._check_frames(i, clip)
            sizes.append(frames.shape[1:3])
            x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)     # (T, H, W, 3)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)                      # (T, 3, H, W)
            batch.append(resize_images(x, (self.input_size, self.input_size)))
        return torch.stack(batch), [(int(h), int(w)) for h, w in sizes]

    def _check_frames(self, index: int, clip: Any) -> np.ndarray:
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

    def detect(self, clips: Sequence[Any]) -> list[Detections]:
        """Detect actions in the target frame of each clip (cameras may differ in size).

        Runs in eval mode under ``torch.inference_mode`` with the configured precision
        (autocast for fp16/bf16); decoding is in float32.

        Args:
            clips: N clips, each (T, H, W, 3) uint8 RGB (see ``prepare``).

        Returns:
            N ``Detections`` with boxes (D, 4) float32 xyxy in each clip's pixels.

        """
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                batch, sizes = self.prepare(clips)
                with self._autocast(batch.device):
                    out = self(batch)
                return postprocess(out.loc, out.conf, out.priors, sizes,
                                   self.priors.config.variances, self.postprocess_config)
        finally:
            self.train(was_training)


def resolve_device(name: str | torch.device) -> torch.device:
    """Turn 'auto'/'cpu'/'cuda'/'cuda:N' into a device, checking that CUDA is there."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device = {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") \
            from exc
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device = {name!r}: expected an available CUDA device, got none '
                             "(use 'cpu' or 'auto')")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'device = {name!r}: expected index < '
                             f'{torch.cuda.device_count()} (CUDA devices present)')
    elif device.type != 'cpu':
        raise ValueError(f"device = {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


def build_parts(config: DetectorConfig) -> STALDetector:
    """Build a randomly initialised detector on the CPU from ``config`` (no device moves)."""
    backbone = build_backbone(config.backbone)
    channels = backbone.out_channels
    fusion = build_fusion(config.fusion, channels)
    motion = build_motion_stream(config.flow, config.frames) if fusion.needs_flow else None
    priors = PriorBox(config.head)
    head = SSDHead(fusion.out_channels, priors.priors_per_cell, config.num_classes)
    return STALDetector(
        motion=motion, backbone=backbone, fusion=fusion, head=head, priors=priors,
        input_size=config.input_size, num_frames=config.frames.num_frames,
        target_index=FrameBuffer(config.frames).target_index, class_names=config.class_names,
        postprocess_config=config.postprocess, rgb_mean=config.rgb_mean, rgb_std=config.rgb_std,
        precision=config.precision, channels_last=config.channels_last)


def build_detector(config: DetectorConfig | None = None,
                   checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device | None = None) -> STALDetector:
    """Build the detector (the one entry point), in eval mode on the resolved device.

    Args:
        config: the model config; None takes the checkpoint's config (or the defaults without
            a checkpoint).  With both, ``config`` wins and the checkpoint must fit it.
        checkpoint: path of a ``checkpoint.save_checkpoint`` file to load (strictly).
        device: overrides ``config.device`` ('auto', 'cpu', 'cuda', 'cuda:N').

    Raises:
        ConfigError: fp16 on a CPU device.
        CheckpointError: unreadable checkpoint or one that does not fit the model.

    """
    state = None
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, 'cpu')
        config = loaded.config if config is None else config
        state = loaded.model
    config = DetectorConfig() if config is None else config
    if not isinstance(config, DetectorConfig):
        raise TypeError(f'build_detector: expected a DetectorConfig, got '
                        f'{type(config).__name__}')
    target = resolve_device(config.device if device is None else device)
    if config.precision == 'fp16' and target.type != 'cuda':
        raise ConfigError("detector.precision = 'fp16': expected 'fp32' or 'bf16' on device "
                          f'{str(target)!r} (fp16 autocast needs CUDA)')
    model = build_parts(config)
    if state is not None:
        load_state(model, state, f'checkpoint {checkpoint}')
    model.to(target)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    return model.eval()
