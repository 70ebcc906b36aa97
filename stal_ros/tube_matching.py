# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑦ Matching primitives of the tube linker: batched per-class NMS and ROAD's sequential pick.

Split out of ``stal_ros.tubes`` (which composes them per frame) to keep each module small;
numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ['greedy_nms', 'nms', 'sequential_pick']


def greedy_nms(iou: np.ndarray, valid: np.ndarray, iou_threshold: float,
               top_k: int) -> np.ndarray:
    """Greedy NMS run independently on each row (class), then keep the ``top_k`` best.

    Args:
        iou: (C, K, K) IoU of the boxes of each row, sorted by score, best first.
        valid: (C, K) bool, False for padding.
        iou_threshold: a box is suppressed by a kept better box if their IoU is above this.
        top_k: most boxes kept per row.

    Returns:
        (C, K) bool, the boxes kept, exactly the sequential greedy result; ``valid`` itself
        when nothing is dropped.
    """
    return nms(iou, valid, iou_threshold, top_k, zero_padding=False)


def nms(iou: np.ndarray, valid: np.ndarray, iou_threshold: float, top_k: int,
        zero_padding: bool = True) -> np.ndarray:
    """``greedy_nms``, by default for all-zero padding boxes.

    With ``zero_padding`` the padding boxes are all zeros: they overlap nothing (IoU 0, not above
    ``iou_threshold`` > 0), so they suppress nothing without being masked.
    """
    k = valid.shape[1]
    keep = valid
    if k > 1:
        # sup[c, j, i]: the better valid box j would suppress i > j.  Stored j-major (K, C, K)
        # so that the 'any j' below reduces whole contiguous rows (much faster in numpy).
        sup_t = np.greater(iou.transpose(1, 0, 2), iou_threshold, order='C')
        sup_t &= _upper(k)[:, None, :]
        if not zero_padding:
            sup_t &= valid.T[:, :, None]
        hit = sup_t.any(axis=0)
        sup = sup_t.transpose(1, 0, 2)
        if np.count_nonzero(hit):
            keep = valid & ~hit  # every suppressor counted ('Fast NMS')
            # That is greedy NMS unless a suppressed box itself suppresses a box; then iterate
            # keep[i] = not any(keep[j] and sup[j, i]) to its fixed point (entry i is final
            # after i iterations).
            if np.count_nonzero(sup[hit]):
                new, keep = keep, valid
                while not np.array_equal(new, keep):
                    keep = new
                    new = valid & ~(sup & keep[:, :, None]).any(axis=1)
    if k > top_k:
        keep = keep & (keep.cumsum(axis=1) <= top_k)
    return keep


_UPPER: dict[int, np.ndarray] = {}


def _upper(k: int) -> np.ndarray:
    """(k, k) bool, True above the diagonal (cached)."""
    m = _UPPER.get(k)
    if m is None:
        m = _UPPER[k] = np.triu(np.ones((k, k), bool), 1)
    return m


def sequential_pick(fr: np.ndarray, rl: int, e: np.ndarray,
                    free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finish the association of the tubes ``fr`` one by one, in priority order.

    The committed picks are exact, and a lower-priority committed tube never holds a box that
    a higher-priority tube of ``fr`` could take, so this is ROAD's loop.

    Args:
        fr: (n,) flat (C, Rl) indices of the tubes left, ascending (class-major, priority).
        rl: Rl.
        e: (C, Rl, Kp) edge scores (-inf where not able), or bool 'able' for the score edge.
        free: (C, Kp) bool, False for the boxes already committed (or not able for any tube).

    Returns:
        The flat (C, Rl) indices of the tubes of ``fr`` that take a box, and those boxes.
    """
    kp = e.shape[2]
    cls = fr // rl
    sel: list[int] = []
    box: list[int] = []
    if e.dtype == bool:
        # Each tube's able, unclaimed boxes as the bits of a Python int (box k = bit k): the
        # best is the lowest set bit, as the columns are sorted by score.
        able = e.reshape(-1, kp).take(fr, axis=0)
        able &= free.take(cls, axis=0)
        packed = np.packbits(able, axis=1, bitorder='little')
        nb = packed.shape[1]
        if nb == 1:
            masks = packed.tobytes()  # iterates as ints
        elif nb in (2, 4, 8):
            masks = packed.view(f'<u{nb}').ravel().tolist()
        elif nb < 8:
            pad = np.zeros((fr.size, 8), np.uint8)
            pad[:, :nb] = packed
            masks = pad.view('<u8').ravel().tolist()
        else:
            raw = packed.tobytes()
            masks = [int.from_bytes(raw[i:i + nb], 'little') for i in range(0, len(raw), nb)]
        prev, tk = -1, 0
        for i, cl, m in zip(fr.tolist(), cls.tolist(), masks):
            if cl != prev:  # class-major: a new class, nothing taken yet
                prev, tk = cl, 0
            m &= ~tk
            if m:
                m &= -m
                tk |= m
                sel.append(i)
                box.append(cl * kp + m.bit_length() - 1)
        return np.array(sel, np.intp), np.array(box, np.intp)
    rows = e.reshape(-1, kp).take(fr, axis=0)
    rows[~free.take(cls, axis=0)] = -np.inf
    prev, tk = -1, 0
    for i, cl, row in zip(fr.tolist(), cls.tolist(), rows.tolist()):
        if cl != prev:
            prev, tk = cl, 0
        best, bk = -np.inf, -1
        for k, v in enumerate(row):
            if v > best and not (tk >> k) & 1:
                best, bk = v, k
        if bk >= 0:
            tk |= 1 << bk
            sel.append(i)
            box.append(cl * kp + bk)
    return np.array(sel, np.intp), np.array(box, np.intp)
