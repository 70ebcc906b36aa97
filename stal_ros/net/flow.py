# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""② The motion stream: a flow subnet per adjacent frame pair, fused into an image-like tensor.

Paper §3.1: a flow subnet (PWC-Net by default; Table 1 compares others) estimates the optical
flow of each adjacent pair of the K-frame clip.  Paper §3.2: the K - 1 flows are upsampled to
the detector's input size, stacked and mapped by a 1x1 conv to 3 channels, so that the shared
backbone can take the flow like an image.

Deviation from the authors' code: it computed ONE flow, from frame t-1 to the future frame t+1
(the adjacent-pair flows were commented out).  We compute the K - 1 adjacent-pair flows of
paper §3.1-3.2, (t-2, t-1) and (t-1, t) for the default causal K = 3 clip, in one batched
call of the flow subnet.

Flow convention everywhere: (N, 2, H, W), channel 0 = x (right), channel 1 = y (down), in
pixels of the grid it lives on, from image 1 to image 2: ``img1(p) ~ img2(p + flow(p))``.

Inputs are checked where users hand them over (``build_detector``, ``Detector.detect``,
``STALDetector.forward``); the modules here state their contracts in their docstrings.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple, Sequence

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from stal_ros.config import FlowConfig, FramesConfig
from stal_ros.net.classical_flow import ClassicalFlow
from stal_ros.net.pwc import PWCNet
from stal_ros.net.transform import resize_images

# Flows are divided by this many pixels (at the detector input size) before the 1x1 fusion conv
# (paper §3.2): the usual FlowNet/PWC-Net scaling (flow / 20), which maps typical human motion
# between consecutive frames (a few pixels) into roughly [-1, 1].
FLOW_NORM = 20.0


def resize_flow(flow: Tensor, size: tuple[int, int], *, mode: str = 'bilinear') -> Tensor:
    """Resize a (N, 2, H, W) flow to ``size`` = (h, w) and rescale its vectors to the new grid.

    ``mode`` is ``'bilinear'`` (antialiased when shrinking) or ``'area'`` (average pooling, for
    downsampling ground truth).  x is multiplied by w / W and y by h / H (pixel-centre
    convention, ``align_corners=False``).

    Returns:
        (N, 2, h, w) flow in pixels of the new grid.
    """
    h0, w0 = flow.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h0, w0) == (h, w):
        return flow
    if mode == 'area':
        out = F.interpolate(flow, size=(h, w), mode='area')
    elif mode == 'bilinear':
        out = resize_images(flow, (h, w))
    else:
        raise ValueError(f"resize_flow: expected mode 'bilinear' or 'area', got {mode!r}")
    scale = torch.tensor((w / w0, h / h0), dtype=flow.dtype, device=flow.device)
    return out * scale.view(1, 2, 1, 1)


class FlowOutput(NamedTuple):
    """Output of a flow subnet.

    Attributes:
        flow: (N, 2, H, W) flow in pixels of the frames given to ``forward`` (x then y).
        pyramid: multiscale estimates for the flow loss (paper eq. 1), finest estimated level
            first, each (N, 2, h_l, w_l) in pixels of its own grid; empty for classical flows.
    """

    flow: Tensor
    pyramid: list[Tensor]


class FlowSubnet(nn.Module):
    """The one flow-subnet interface: any image size in, flow at that size out.

    Frames are resized to ``input_size`` (paper §3.1: 320x320, multiples of 64 for PWC-Net),
    the ``estimator`` (``PWCNet`` or ``ClassicalFlow``) runs there, and its flow is resized
    back to the frames' size with its vectors rescaled.

    Attributes:
        estimator: module mapping two (N, 3, h, w) images at ``input_size`` to ``(flow in
            pixels of its own grid, pyramid)``, with a ``learned`` attribute.
        input_size: (h, w) the estimator runs at.
        learned: whether the estimator has trainable weights.
    """

    def __init__(self, *, estimator: nn.Module, input_size: tuple[int, int]) -> None:
        super().__init__()
        if not isinstance(estimator, nn.Module) or not hasattr(estimator, 'learned'):
            raise TypeError(f'FlowSubnet: expected an nn.Module estimator with a `learned` '
                            f'attribute (PWCNet, ClassicalFlow), got {type(estimator).__name__}')
        self.estimator = estimator
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.learned = bool(estimator.learned)

    def forward(self, img1: Tensor, img2: Tensor) -> FlowOutput:
        """Estimate the flow from ``img1`` to ``img2``.

        Args:
            img1: (N, 3, H, W) float RGB in [0, 1], any H, W.
            img2: (N, 3, H, W) same shape, dtype and device.

        Returns:
            ``FlowOutput``: flow (N, 2, H, W) in pixels of the given frames, and the
            estimator's multiscale pyramid (on the ``input_size`` grid).
        """
        size = tuple(img1.shape[-2:])
        flow, pyramid = self.estimator(resize_images(img1, self.input_size),
                                       resize_images(img2, self.input_size))
        return FlowOutput(resize_flow(flow, size), list(pyramid))


def build_flow_subnet(config: FlowConfig) -> FlowSubnet:
    """Build the flow subnet chosen by ``config.kind`` (``'pwc'``, ``'dis'``, ``'farneback'``)."""
    if not isinstance(config, FlowConfig):
        raise TypeError(f'build_flow_subnet: expected a FlowConfig, got {type(config).__name__}')
    if config.kind == 'pwc':
        context = (config.context_channels, config.context_dilations)
        estimator: nn.Module = PWCNet(pyramid_channels=config.pyramid_channels,
                                      search_range=config.search_range,
                                      estimator_channels=config.estimator_channels,
                                      dense=config.dense, cost=config.cost,
                                      context=context if config.context_network else None)
    else:
        estimator = ClassicalFlow(config.kind, dis_preset=config.dis_preset,
                                  finest_scale=config.dis_finest_scale)
    return FlowSubnet(estimator=estimator, input_size=config.input_size)


def subtract_median(flows: Tensor) -> Tensor:
    """Subtract from every channel of (N, C, h, w) flows its median over the image.

    The median vector of a flow is the motion of whatever covers most of the view: the
    background, whose apparent motion is the camera's own when the camera pans or shakes.
    Returns (N, C, h, w) flows relative to it.
    """
    n, c = flows.shape[:2]
    median = flows.reshape(n, c, -1).median(dim=2).values           # (N, C)
    return flows - median.view(n, c, 1, 1)


class FlowToImage(nn.Module):
    """Fuse K - 1 flows into one image-like (N, 3, h, w) tensor (paper §3.2).

    Each flow is bilinearly resized to the detector input size with its vectors rescaled to
    that grid (so the representation does not depend on the camera resolution), divided by
    ``flow_norm`` pixels, the flows are stacked (2(K - 1) channels) and a 1x1 conv maps them to
    3 channels.  With ``compensate_camera`` each flow's median vector is subtracted first
    (``subtract_median``; not in the paper).
    """

    def __init__(self, num_pairs: int, *, flow_norm: float = FLOW_NORM,
                 compensate_camera: bool = False) -> None:
        super().__init__()
        if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
            raise ValueError(f'FlowToImage: expected num_pairs >= 1, got {num_pairs!r}')
        if not flow_norm > 0:
            raise ValueError(f'FlowToImage: expected flow_norm > 0, got {flow_norm!r}')
        self.num_pairs = num_pairs
        self.flow_norm = float(flow_norm)
        self.compensate_camera = bool(compensate_camera)
        self.conv = nn.Conv2d(2 * num_pairs, 3, kernel_size=1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, flows: Sequence[Tensor], out_size: tuple[int, int]) -> Tensor:
        """Fuse the flows.

        Args:
            flows: K - 1 flows, each (N, 2, H, W) in pixels of the frames, oldest pair first.
            out_size: (h, w) detector input size.

        Returns:
            (N, 3, h, w) image-like tensor.
        """
        stacked = torch.cat([resize_flow(f, out_size) for f in flows], 1)  # (N, 2(K-1), h, w)
        if self.compensate_camera:
            stacked = subtract_median(stacked)
        return self.conv(stacked / self.flow_norm)


class MotionOutput(NamedTuple):
    """Output of the motion stream.

    Attributes:
        image: (N, 3, h, w) image-like flow representation at the requested size.
        flows: T - 1 flows, each (N, 2, H, W) in pixels of the clip's frames, oldest pair first.
        pyramids: per pair, the flow subnet's multiscale estimates (finest first; empty lists
            for classical flows), for the flow loss.
    """

    image: Tensor
    flows: list[Tensor]
    pyramids: list[list[Tensor]]


class MotionStream(nn.Module):
    """Flow of every adjacent frame pair, fused into an image-like tensor (paper §3.1-3.2).

    The flow subnet is frozen at first and unfrozen once the detection loss is stable (paper
    §3.4/eq. 8); ``freeze_flow`` switches its gradients off and keeps it in eval mode even when
    the whole model is put in train mode; a frozen or classical subnet runs under
    ``torch.no_grad`` to save memory.
    """

    def __init__(self, *, flow_subnet: FlowSubnet, to_image: FlowToImage,
                 num_frames: int) -> None:
        super().__init__()
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
            raise ValueError(f'MotionStream: expected num_frames >= 2, got {num_frames!r}')
        if to_image.num_pairs != num_frames - 1:
            raise ValueError(f'MotionStream: expected to_image for {num_frames - 1} pairs '
                             f'(num_frames={num_frames}), got {to_image.num_pairs}')
        self.flow_subnet = flow_subnet
        self.to_image = to_image
        self.num_frames = num_frames
        self.flow_frozen = False

    def freeze_flow(self) -> None:
        """Stop training the flow subnet: no gradients, eval mode (kept by ``train()``)."""
        self.flow_frozen = True
        self.flow_subnet.requires_grad_(False)
        self.flow_subnet.eval()

    def unfreeze_flow(self) -> None:
        """Train the flow subnet again (gradients on, mode follows this module's mode)."""
        self.flow_frozen = False
        self.flow_subnet.requires_grad_(True)
        self.flow_subnet.train(self.training)

    def train(self, mode: bool = True) -> 'MotionStream':
        """Set train/eval mode; a frozen flow subnet stays in eval mode."""
        super().train(mode)
        if self.flow_frozen:
            self.flow_subnet.eval()
        return self

    def forward(self, clip: Tensor, out_size: tuple[int, int]) -> MotionOutput:
        """Compute the T - 1 adjacent-pair flows in one batched call and fuse them.

        Args:
            clip: (N, T, 3, H, W) float RGB in [0, 1], oldest frame first, T = num_frames.
            out_size: (h, w) detector input size of the fused image.

        Returns:
            ``MotionOutput`` (image (N, 3, h, w), T - 1 flows (N, 2, H, W), pyramids).
        """
        n, t, c, h, w = clip.shape
        pairs = t - 1
        # Pairs stacked into the batch, index n * (T - 1) + p for pair p = (frame p, p + 1).
        first = clip[:, :-1].reshape(n * pairs, c, h, w)
        second = clip[:, 1:].reshape(n * pairs, c, h, w)
        no_grad = self.flow_frozen or not self.flow_subnet.learned
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            out = self.flow_subnet(first, second)
        flow = out.flow.reshape(n, pairs, 2, h, w)
        flows = [flow[:, p] for p in range(pairs)]
        levels = [lvl.reshape(n, pairs, *lvl.shape[1:]) for lvl in out.pyramid]
        pyramids = [[lvl[:, p] for lvl in levels] for p in range(pairs)]
        return MotionOutput(self.to_image(flows, out_size), flows, pyramids)


def build_motion_stream(flow: FlowConfig, frames: FramesConfig) -> MotionStream:
    """Build the motion stream of the configured flow subnet for K-frame clips."""
    if not isinstance(frames, FramesConfig):
        raise TypeError(f'build_motion_stream: expected a FramesConfig, got '
                        f'{type(frames).__name__}')
    k = frames.num_frames
    to_image = FlowToImage(k - 1, compensate_camera=flow.compensate_camera)
    return MotionStream(flow_subnet=build_flow_subnet(flow), to_image=to_image, num_frames=k)
