# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Classical (not learned) optical flow from OpenCV as a drop-in flow subnet.

Paper Table 1 compares flow subnets, including a classical one (Brox); a classical flow also
serves robots without a GPU.  DIS (Kroeger et al., ECCV 2016) runs at one of OpenCV's presets;
Farneback uses the fixed parameters below.  Both run on CPU numpy, one pair at a time, under
``torch.no_grad`` (nothing to train), and return tensors on the input's device.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn, Tensor

CLASSICAL_METHODS = ('dis', 'farneback')
DIS_PRESETS = {'ultrafast': cv2.DISOpticalFlow_PRESET_ULTRAFAST,
               'fast': cv2.DISOpticalFlow_PRESET_FAST,
               'medium': cv2.DISOpticalFlow_PRESET_MEDIUM}
# Farneback parameters (OpenCV's documented example values, four levels for 320x320 inputs):
# pyramid scale, levels, window size, iterations per level, polynomial neighbourhood, sigma.
FARNEBACK_PARAMS = {'pyr_scale': 0.5, 'levels': 4, 'winsize': 15, 'iterations': 3,
                    'poly_n': 5, 'poly_sigma': 1.2, 'flags': 0}
# ITU-R BT.601 luma weights for the grey images both methods work on.
_LUMA = (0.299, 0.587, 0.114)


def to_grey_uint8(images: Tensor) -> np.ndarray:
    """Convert (N, 3, H, W) float RGB in [0, 1] to (N, H, W) uint8 grey on the CPU."""
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = (images * weights).sum(1) * 255.0
    return grey.round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class ClassicalFlow(nn.Module):
    """OpenCV DIS or Farneback flow from image 1 to image 2 (no parameters, no gradients).

    Attributes:
        learned: False.
        method: ``'dis'`` or ``'farneback'``.
        preset: the DIS preset name (ignored for Farneback).
        finest_scale: the finest pyramid level DIS estimates (0: full resolution), -1 for the
            preset's own.
    """

    learned = False

    def __init__(self, method: str, *, dis_preset: str = 'fast', finest_scale: int = -1) -> None:
        super().__init__()
        if method not in CLASSICAL_METHODS:
            raise ValueError(f'ClassicalFlow: expected method in {list(CLASSICAL_METHODS)}, '
                             f'got {method!r}')
        if dis_preset not in DIS_PRESETS:
            raise ValueError(f'ClassicalFlow: expected dis_preset in {list(DIS_PRESETS)}, '
                             f'got {dis_preset!r}')
        if isinstance(finest_scale, bool) or not isinstance(finest_scale, int) or \
                finest_scale < -1:
            raise ValueError(f'ClassicalFlow: expected finest_scale >= -1, got {finest_scale!r}')
        self.method = method
        self.preset = dis_preset
        self.finest_scale = finest_scale

    def _pair(self, grey1: np.ndarray, grey2: np.ndarray) -> np.ndarray:
        if self.method == 'dis':
            # Created per call: OpenCV objects cannot be deep-copied or pickled with the module,
            # and creation is cheap next to the flow itself.
            dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
            if self.finest_scale >= 0:
                dis.setFinestScale(self.finest_scale)
            return dis.calc(grey1, grey2, None)
        return cv2.calcOpticalFlowFarneback(grey1, grey2, None, **FARNEBACK_PARAMS)

    @torch.no_grad()
    def forward(self, img1: Tensor, img2: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Estimate the flow from ``img1`` to ``img2``, one pair at a time.

        Args:
            img1: (N, 3, H, W) float RGB in [0, 1], any device.
            img2: (N, 3, H, W) same.

        Returns:
            ``(flow, [])``: flow (N, 2, H, W) in pixels (x then y), ``img1(p) ~ img2(p +
            flow(p))``, on the input's device and dtype; no multiscale estimates.
        """
        grey1, grey2 = to_grey_uint8(img1), to_grey_uint8(img2)       # (N, H, W) each
        flows = np.stack([self._pair(a, b) for a, b in zip(grey1, grey2)])   # (N, H, W, 2)
        flow = torch.from_numpy(flows).permute(0, 3, 1, 2)
        return flow.to(device=img1.device, dtype=img1.dtype).contiguous(), []
