# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Classical (not learned) optical flow from OpenCV as a drop-in flow subnet.

Paper Table 1 compares flow subnets, including a classical one (Brox); a classical flow also
serves robots without a GPU.  DIS (Kroeger et al., ECCV 2016) runs at one of OpenCV's presets;
Farneback uses the fixed parameters below.  Both run on CPU numpy, one pair at a time, under
``torch.no_grad`` (nothing to train), and return tensors on the input's device.

Streaming clips overlap: with K frames per clip, each new frame brings one new pair and the
other K - 2 pairs were in the previous clip.  A small cache of the last pairs' flows, keyed by
the pair's grey images and checked byte for byte on a hit, computes each pair once per stream
(paper §3: the flow of frame t to t + 1 does not depend on the clip around it).
"""

from __future__ import annotations

import collections
from typing import NamedTuple

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
# Pairs whose flow the cache keeps (least recently used first out): 4 pairs of a K = 5 clip
# for 16 cameras; about 16 MB at 160 x 160.
FLOW_CACHE_PAIRS = 64
# ITU-R BT.601 luma weights for the grey images both methods work on.
_LUMA = (0.299, 0.587, 0.114)


def to_grey_uint8(images: Tensor) -> np.ndarray:
    """Convert (N, 3, H, W) float RGB in [0, 1] to (N, H, W) uint8 grey on the CPU."""
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    grey = (images * weights).sum(1) * 255.0
    return grey.round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class CacheInfo(NamedTuple):
    """Flow-cache counters (as ``functools.lru_cache``'s): pairs found, pairs computed, size."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class ClassicalFlow(nn.Module):
    """OpenCV DIS or Farneback flow from image 1 to image 2 (no parameters, no gradients).

    Keeps the flows of the last ``cache_pairs`` pairs: a pair seen again (the overlap of
    consecutive streaming clips) is not computed again.  Not thread-safe: one thread calls it.

    Attributes:
        learned: False.
        method: ``'dis'`` or ``'farneback'``.
        preset: the DIS preset name (ignored for Farneback).
        finest_scale: the finest pyramid level DIS estimates (0: full resolution), -1 for the
            preset's own.
        cache_pairs: how many pairs' flows the cache keeps (0: no cache).
    """

    learned = False

    def __init__(self, method: str, *, dis_preset: str = 'fast', finest_scale: int = -1,
                 cache_pairs: int = FLOW_CACHE_PAIRS) -> None:
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
        if isinstance(cache_pairs, bool) or not isinstance(cache_pairs, int) or cache_pairs < 0:
            raise ValueError(f'ClassicalFlow: expected cache_pairs >= 0, got {cache_pairs!r}')
        self.method = method
        self.preset = dis_preset
        self.finest_scale = finest_scale
        self.cache_pairs = cache_pairs
        # hash of the pair -> (grey1, grey2, flow (H, W, 2)), least recently used first.
        self._cache: collections.OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = \
            collections.OrderedDict()
        self._hits = 0
        self._misses = 0

    def cache_info(self) -> CacheInfo:
        """Return the flow cache's counters since construction or ``cache_clear``."""
        return CacheInfo(self._hits, self._misses, self.cache_pairs, len(self._cache))

    def cache_clear(self) -> None:
        """Empty the flow cache and zero its counters."""
        self._cache.clear()
        self._hits = self._misses = 0

    def _cached_pair(self, grey1: np.ndarray, grey2: np.ndarray) -> np.ndarray:
        """Return the flow (H, W, 2) of the pair from the cache, or compute and keep it."""
        if self.cache_pairs == 0:
            self._misses += 1
            return self._pair(grey1, grey2)
        key = hash((grey1.shape, grey1.tobytes(), grey2.tobytes()))
        entry = self._cache.get(key)
        if entry is not None and np.array_equal(entry[0], grey1) and \
                np.array_equal(entry[1], grey2):
            self._cache.move_to_end(key)
            self._hits += 1
            return entry[2]
        self._misses += 1
        flow = self._pair(grey1, grey2)
        self._cache[key] = (grey1.copy(), grey2.copy(), flow)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_pairs:
            self._cache.popitem(last=False)
        return flow

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
        flows = np.stack([self._cached_pair(a, b) for a, b in zip(grey1, grey2)])  # (N, H, W, 2)
        flow = torch.from_numpy(flows).permute(0, 3, 1, 2)
        return flow.to(device=img1.device, dtype=img1.dtype).contiguous(), []
