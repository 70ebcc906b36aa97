# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Box geometry on numpy arrays: IoU in both box conventions, and greedy NMS (one home).

Two conventions for an xyxy box:
- continuous (inside stal_ros, the tube linker): the box (0, 0, 10, 10) covers exactly 10 x 10
  pixels, area = (x2 - x1)(y2 - y1);
- inclusive pixel (the UCF101-24 / JHMDB annotations, ROAD's and ACT's evaluation, hence
  ``stal_ros.metrics``): (x1, y1, x2, y2) covers x2 - x1 + 1 columns, area =
  (x2 - x1 + 1)(y2 - y1 + 1).
They differ by exactly that: the inclusive IoU of two boxes is the continuous IoU of the same
boxes with x2 + 1 and y2 + 1.

Letters: M, N boxes; G groups (the leading dimensions, flattened); C rows (e.g. classes) of
K boxes each.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ['box_iou', 'box_iou_inclusive', 'coords_areas', 'greedy_nms', 'grouped_iou',
           'paired_iou', 'paired_iou_inclusive']


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous IoU of every pair of boxes; 0 where the union is empty.

    Args:
        a: (..., M, 4) xyxy.
        b: (..., N, 4) xyxy with the same leading shape as ``a``.

    Returns:
        (..., M, N) IoU in [0, 1], in the dtype of the inputs.
    """
    m, n = a.shape[-2], b.shape[-2]
    lead = a.shape[:-2]
    if b.shape[:-2] != lead:
        raise ValueError(f'box_iou: expected equal leading shapes, got {a.shape} and {b.shape}')
    g = math.prod(lead)
    return grouped_iou(coords_areas(a, g * m), coords_areas(b, g * n), g).reshape(lead + (m, n))


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous IoU of a[..., i] with b[..., i] for each i; 0 where the union is empty.

    Args:
        a: (..., n, 4) xyxy.
        b: (..., n, 4) xyxy, the same shape.

    Returns:
        (..., n) IoU in [0, 1], in the dtype of the inputs; the same bits as the diagonal of
        ``box_iou(a, b)``.
    """
    if a.shape != b.shape:
        raise ValueError(f'paired_iou: expected equal shapes, got {a.shape} and {b.shape}')
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return inter / np.maximum(union, np.finfo(union.dtype).tiny)


def coords_areas(boxes: np.ndarray, k: int) -> np.ndarray:
    """Rows x1, y1, x2, y2, area = (x2 - x1)(y2 - y1) of k boxes: (..., >= 4) -> (5, k).

    Columns after the 4 coordinates (a score, a flag) are ignored; the dtype is kept.
    """
    out = np.empty((5, k), boxes.dtype)
    out[:4] = boxes.reshape(k, -1)[:, :4].T
    area = np.subtract(out[2], out[0], out=out[4])
    area *= out[3] - out[1]
    return out


def grouped_iou(a: np.ndarray, b: np.ndarray, groups: int) -> np.ndarray:
    """``box_iou`` of G groups of boxes given by ``coords_areas``: (5, G*M), (5, G*N) -> (G, M, N).

    The form the tube linker calls once per frame, with the areas computed once per box.
    """
    g = groups
    m, n = a.shape[1] // g, b.shape[1] // g
    # Coordinates first and every pair spelled out in long 1-D rows: numpy is slow on short
    # broadcast inner loops and fast on long contiguous ones (1.5x on the tube benchmark).  The
    # areas computed once per box are the same float operations as per pair: same bits.
    pa = a.repeat(n, axis=1)  # (5, G*M*N)
    pb = b.reshape(5, g, 1, n).repeat(m, axis=2).reshape(5, -1)
    same = a.dtype == b.dtype  # else the pair arrays have the promoted dtype, as a new array
    # Width and height of the overlap together, as rows 0 and 1 of (2, G*M*N) arrays.
    wh = np.minimum(pa[2:4], pb[2:4])
    wh -= np.maximum(pa[:2], pb[:2], out=pa[:2] if same else None)
    np.maximum(wh, 0, out=wh)
    inter = wh[0]
    inter *= wh[1]
    union = pa[4]
    union += pb[4]
    union -= inter
    # union >= both areas >= 0, and union == 0 implies inter == 0: such pairs give 0.
    np.maximum(union, np.finfo(union.dtype).tiny, out=union)
    inter /= union
    return inter.reshape(g, m, n)


def box_iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the IoU of every pair of inclusive pixel boxes.

    Args:
        a: (M, 4) xyxy.
        b: (N, 4) xyxy.

    Returns:
        (M, N) float64 IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def paired_iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the IoU of a[i] with b[i] for each i (inclusive pixel boxes).

    Args:
        a: (n, 4) xyxy.
        b: (n, 4) xyxy.

    Returns:
        (n,) float64 IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
             + (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1) - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_nms(iou: np.ndarray, valid: np.ndarray, iou_threshold: float,
               top_k: int) -> np.ndarray:
    """Greedy NMS run independently on each row (e.g. class), then keep each row's ``top_k``.

    Exactly the sequential rule: going down a row best first, a valid box is kept unless its
    IoU with a box already kept is above ``iou_threshold``; at most ``top_k`` are kept.

    Args:
        iou: (C, K, K) IoU of the boxes of each row, sorted by score, best first.
        valid: (C, K) bool, False for padding (which suppresses nothing).
        iou_threshold: suppression threshold.
        top_k: most boxes kept per row.

    Returns:
        (C, K) bool, the boxes kept; ``valid`` itself when nothing is dropped.
    """
    k = valid.shape[1]
    keep = valid
    if k > 1:
        # suppresses[j, c, i]: the valid box j of row c would suppress the worse box i > j.
        # j-major, so that 'any j' below reduces whole contiguous rows (much faster in numpy).
        suppresses = np.greater(iou.transpose(1, 0, 2), iou_threshold, order='C')
        suppresses &= _upper_triangle(k)[:, None, :]
        suppresses &= valid.T[:, :, None]
        hit = suppresses.any(axis=0)
        if np.count_nonzero(hit):
            keep = valid & ~hit  # every box with any better suppressor dropped ('Fast NMS')
            # That is greedy NMS unless a dropped box itself suppresses a box: then iterate
            # keep[i] = not any(keep[j] and suppresses[j, i]) to its fixed point (entry i is
            # final after i iterations).
            by_row = suppresses.transpose(1, 0, 2)  # (C, K, K)
            if np.count_nonzero(by_row[hit]):
                new, keep = keep, valid
                while not np.array_equal(new, keep):
                    keep = new
                    new = valid & ~(by_row & keep[:, :, None]).any(axis=1)
    if k > top_k:
        keep = keep & (keep.cumsum(axis=1) <= top_k)
    return keep


@functools.lru_cache(maxsize=64)
def _upper_triangle(k: int) -> np.ndarray:
    """(k, k) bool, True above the diagonal (cached, read-only)."""
    m = np.triu(np.ones((k, k), bool), 1)
    m.flags.writeable = False
    return m
