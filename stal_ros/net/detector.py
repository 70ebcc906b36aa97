# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The frame-level detector: ② motion stream, ③ shared backbone, ④ fusion, ⑤ head, ⑥ boxes.

Paper §3: the K-frame clip gives K - 1 adjacent-pair flows fused into an image-like tensor;
the SAME backbone weights run on the target RGB frame (spatial path) and on that flow image
(temporal path) in one pass over both, each stream with its own batch-norm statistics
(``stream_norm``); the six pairs of maps are fused per scale and an SSD/RFB head predicts
class scores and box offsets for every prior.

Two objects, as torchvision separates its models from their transforms:

* ``STALDetector`` (``nn.Module``): a batch of clips tensor -> ``DetectorOutput``; composed
  from injected parts; what training differentiates.
* ``Detector``: what the pipeline, the node and the evaluation use: ``detect(clips)`` takes
  numpy clips of any camera size and returns ``Detections`` in each camera's pixels through
  ``ClipTransform`` -> ``STALDetector`` -> ``Postprocessor`` -> ``ClipTransform``.

``build_model`` turns a ``DetectorConfig`` into parts (the only place that reads the config);
``build_detector`` is the entry point that adds a checkpoint, the device and the precision.

Frames: the target frame is the newest one in the default causal mode and the middle one in
the paper's centred mode (see ``frames.FrameBuffer``).  Camera images of any resolution and
aspect are resized to S x S (SSD style, the aspect is not kept).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn, Tensor

from stal_ros.config import ConfigError, DetectorConfig
from stal_ros.frames import FrameBuffer
from stal_ros.net.backbone import build_backbone
from stal_ros.net.box_coder import BoxCoder
from stal_ros.net.checkpoint import check_compatible, load_checkpoint, load_state
from stal_ros.net.flow import build_motion_stream, MotionOutput, MotionStream
from stal_ros.net.fusion import build_fusion
from stal_ros.net.head import SSDHead
from stal_ros.net.postprocess import Postprocessor
from stal_ros.net.priors import PriorBox
from stal_ros.net.stream_norm import StreamBatchNorm2d
from stal_ros.net.transform import ClipTransform
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
    """Flow + fusion action detector composed from its parts (paper §3).

    Args:
        motion: the motion stream (flow subnet + 1x1 fusion to an image), None for RGB only.
        backbone: the shared backbone, built for 2 streams when there is a motion stream
            (``build_backbone(..., num_streams=2)``), with ``feature_sizes(S)``.
        fusion: the multiscale fusion (``needs_flow`` False: RGB only).
        head: the SSD/RFB head over the fused maps.
        priors: (P, 4) normalised cxcywh default boxes of the S x S input, in head order.
        input_size: S.
        num_frames: T, frames per clip.
        target_index: index of the frame localised in the clip.
        rgb_mean, rgb_std: normalisation of RGB frames in [0, 1].

    """

    def __init__(self, *, motion: MotionStream | None, backbone: nn.Module, fusion: nn.Module,
                 head: SSDHead, priors: Tensor, input_size: int, num_frames: int,
                 target_index: int, rgb_mean: Sequence[float],
                 rgb_std: Sequence[float]) -> None:
        super().__init__()
        if fusion.needs_flow and motion is None:
            raise ValueError('STALDetector: expected a motion stream for a fusion that needs '
                             'flow, got motion=None')
        if not 0 <= target_index < num_frames:
            raise ValueError(f'STALDetector: expected target_index in [0, {num_frames}), got '
                             f'{target_index}')
        sizes = backbone.feature_sizes(input_size)
        expected = sum(h * w * a for (h, w), a in zip(sizes, head.priors_per_cell))
        if priors.shape != (expected, 4):
            raise ValueError(f'STALDetector: expected priors of shape ({expected}, 4) for the '
                             f'head at input size {input_size}, got {tuple(priors.shape)}')
        self.motion = motion if fusion.needs_flow else None
        self.backbone = backbone
        self.fusion = fusion
        self.head = head
        self.input_size = int(input_size)
        self.num_frames = int(num_frames)
        self.target_index = int(target_index)
        # Batch norm in training needs more than one value per channel: with a 1x1 map that
        # is more than one image per stream.
        has_norm = any(isinstance(m, (nn.BatchNorm2d, StreamBatchNorm2d))
                       for m in backbone.modules())
        self.min_train_batch = 2 if has_norm and min(h * w for h, w in sizes) == 1 else 1
        self.register_buffer('priors', priors.float(), persistent=False)
        self.register_buffer('rgb_mean', torch.tensor(rgb_mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('rgb_std', torch.tensor(rgb_std).view(1, 3, 1, 1),
                             persistent=False)

    @property
    def num_classes(self) -> int:
        """Return K, classes including background."""
        return self.head.num_classes

    def freeze_flow(self) -> None:
        """Freeze the flow subnet (paper §3.4: frozen until the detection loss is stable)."""
        if self.motion is not None:
            self.motion.freeze_flow()

    def unfreeze_flow(self) -> None:
        """Train the flow subnet end to end again."""
        if self.motion is not None:
            self.motion.unfreeze_flow()

    def forward(self, clip: Tensor) -> DetectorOutput:
        """Run the network on a batch of clips (the public boundary for training).

        Args:
            clip: (N, T, 3, S, S) float RGB in [0, 1], oldest frame first, T = num_frames,
                S = input_size; in training N >= ``min_train_batch``.

        Returns:
            ``DetectorOutput`` (loc (N, P, 4), conf (N, P, K), motion, priors (P, 4)).

        """
        self._check_clip(clip)
        s = self.input_size
        rgb = (clip[:, self.target_index] - self.rgb_mean) / self.rgb_std    # (N, 3, S, S)
        motion = None
        if self.motion is None:
            fused = self.fusion(self.backbone(rgb), None)
        else:
            motion = self.motion(clip, (s, s))                              # image (N, 3, S, S)
            # One pass of the shared weights over both streams (paper §3.3.2), stacked
            # stream-major: the backbone's batch norms keep statistics per stream.
            n = rgb.shape[0]
            both = self.backbone(torch.cat([rgb, motion.image.to(rgb.dtype)]))  # L x (2N, ...)
            fused = self.fusion([m[:n] for m in both], [m[n:] for m in both])
        loc, conf = self.head(fused)
        return DetectorOutput(loc, conf, motion, self.priors)

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
        if self.training and clip.shape[0] < self.min_train_batch:
            raise ValueError(f'STALDetector: expected a training batch of at least '
                             f'{self.min_train_batch} clips, got {clip.shape[0]}: the smallest '
                             f'feature map is 1x1 at input size {self.input_size}, and batch '
                             'norm needs more than one value per channel in training (use a '
                             'batch size >= 2, or train in eval mode for a single clip)')


class Detector:
    """Inference: numpy clips of any camera size in, ``Detections`` in camera pixels out.

    Holds the network and what surrounds it; made by ``build_detector``.

    Attributes:
        model: the ``STALDetector`` (kept in eval mode by ``detect``).
        transform: numpy <-> tensors and camera pixels.
        postprocess: decoding, thresholds and NMS.
        config: the ``DetectorConfig`` it was built from.
        device: where the model runs.
        precision: 'fp32', 'fp16' or 'bf16' autocast.
        channels_last: whether the model's weights are in the channels_last memory format.

    """

    def __init__(self, *, model: STALDetector, transform: ClipTransform,
                 postprocess: Postprocessor, config: DetectorConfig, device: torch.device,
                 precision: str, channels_last: bool) -> None:
        self.model = model
        self.transform = transform
        self.postprocess = postprocess
        self.config = config
        self.device = device
        self.precision = precision
        self.channels_last = channels_last

    @property
    def class_names(self) -> tuple[str, ...]:
        """The C foreground class names (label i is ``class_names[i]``)."""
        return self.config.class_names

    def detect(self, clips: Sequence[Any]) -> list[Detections]:
        """Detect actions in the target frame of each clip (cameras may differ in size).

        Runs in eval mode under ``torch.inference_mode`` with the configured precision
        (autocast for fp16/bf16); decoding is in float32.

        Args:
            clips: N clips, each (T, H, W, 3) uint8 RGB, a list of T (H, W, 3) frames or a
                ``structures.Clip`` (see ``ClipTransform.to_batch``).

        Returns:
            N ``Detections`` with boxes (D, 4) float32 xyxy in each clip's pixels.

        """
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                batch, sizes = self.transform.to_batch(clips, self.device)
                with self._autocast():
                    out = model(batch)
                boxes = self.postprocess(out.loc, out.conf, out.priors)
                return self.transform.to_detections(boxes, sizes)
        finally:
            model.train(was_training)

    def _autocast(self) -> Any:
        dtype = _AMP_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)


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


def build_priors(config: DetectorConfig, backbone: nn.Module) -> Tensor:
    """(P, 4) default boxes of the backbone's maps at ``config.input_size``."""
    head = config.head
    generator = PriorBox(scales=head.scales,
                         aspect_ratios=[head.ratios(level) for level in range(len(
                             head.ratios_per_scale))],
                         clip=head.clip_priors)
    return generator(backbone.feature_sizes(config.input_size))


def build_model(config: DetectorConfig) -> STALDetector:
    """Build a randomly initialised network on the CPU from ``config`` (for training)."""
    if not isinstance(config, DetectorConfig):
        raise TypeError(f'build_model: expected a DetectorConfig, got {type(config).__name__}')
    fusion_needs_flow = config.fusion.kind != 'none'
    backbone = build_backbone(config.backbone, num_streams=2 if fusion_needs_flow else 1)
    fusion = build_fusion(config.fusion, backbone.out_channels)
    motion = build_motion_stream(config.flow, config.frames) if fusion.needs_flow else None
    head = SSDHead(fusion.out_channels, config.head.priors_per_cell(), config.num_classes)
    return STALDetector(
        motion=motion, backbone=backbone, fusion=fusion, head=head,
        priors=build_priors(config, backbone), input_size=config.input_size,
        num_frames=config.frames.num_frames,
        target_index=FrameBuffer(config.frames).target_index,
        rgb_mean=config.rgb_mean, rgb_std=config.rgb_std)


def build_detector(config: DetectorConfig | None = None,
                   checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device | None = None) -> Detector:
    """Build the inference detector (the one entry point), in eval mode on its device.

    Args:
        config: the model config; None takes the checkpoint's config (or the defaults without
            a checkpoint).  With both, the checkpoint must have been trained with the same
            network, input and encoding (``checkpoint.check_compatible``); only runtime
            settings (post-processing, device, precision, channels_last, training-only
            fields) may differ, and ``config``'s values are used for those.
        checkpoint: path of a ``checkpoint.save_checkpoint`` file to load (strictly).
        device: overrides ``config.device`` ('auto', 'cpu', 'cuda', 'cuda:N').

    Raises:
        ConfigError: fp16 on a CPU device.
        CheckpointError: unreadable checkpoint or one that does not fit the config/model.

    """
    state = None
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, 'cpu')
        if config is None:
            config = loaded.config
        else:
            check_compatible(loaded.config, config, f'checkpoint {checkpoint}')
        state = loaded.model
    config = DetectorConfig() if config is None else config
    if not isinstance(config, DetectorConfig):
        raise TypeError(f'build_detector: expected a DetectorConfig, got '
                        f'{type(config).__name__}')
    target = resolve_device(config.device if device is None else device)
    if config.precision == 'fp16' and target.type != 'cuda':
        raise ConfigError("detector.precision = 'fp16': expected 'fp32' or 'bf16' on device "
                          f'{str(target)!r} (fp16 autocast needs CUDA)')
    model = build_model(config)
    if state is not None:
        load_state(model, state, f'checkpoint {checkpoint}')
    model.to(target)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    post = config.postprocess
    return Detector(
        model=model.eval(),
        transform=ClipTransform(input_size=config.input_size,
                                num_frames=config.frames.num_frames,
                                target_index=model.target_index),
        postprocess=Postprocessor(box_coder=BoxCoder(config.head.variances),
                                  score_threshold=post.score_threshold, nms_iou=post.nms_iou,
                                  pre_nms_top_k=post.pre_nms_top_k, top_k=post.top_k,
                                  max_detections=post.max_detections),
        config=config, device=target, precision=config.precision,
        channels_last=config.channels_last)
