# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""ROAD's tube-to-box association for all classes at once: edge scores and the greedy match.

ROAD (Singh et al. 2017, §3) associates per class: the live tubes, in priority order, each
take the unclaimed box with the best edge score among those it may take (IoU with its last
box >= ``tubes.iou_threshold``).  ``greedy_match`` gives exactly that result.  Letters:
C classes, Rl tube rows per class (live tubes by priority, then free slots), Kp candidate
boxes per class (best score first, then padding), n tubes or pairs.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ['class_score_edges', 'greedy_match']


def class_score_edges(able: np.ndarray, tube_slots: np.ndarray, slot_class_scores: np.ndarray,
                      candidate_class_scores: np.ndarray,
                      candidate_scores: np.ndarray | None) -> np.ndarray:
    """Compute ROAD's 'scrSim' edges, 1 - L2 distance of class-score vectors, or 'scrMinusSim'.

    Args:
        able: (C, Rl, Kp) bool, the pairs whose edge is needed.
        tube_slots: (C, Rl) slot of each tube row.
        slot_class_scores: (S, C) float64 class scores of each slot's last box.
        candidate_class_scores: (C, Kp, C) float64 class scores of the candidates.
        candidate_scores: (C, Kp) box scores, added for 'scrMinusSim'; None for 'scrSim'.

    Returns:
        (C, Rl, Kp) float64 edge scores, -inf where not ``able``.
    """
    c, rl, kp = able.shape
    pair = able.ravel().nonzero()[0]  # flat (C, Rl, Kp): only these pairs, a few per tube
    row, col = np.divmod(pair, kp)  # flat (C, Rl) tube row, candidate column
    box = row // rl * kp + col  # flat (C, Kp) candidate
    diff = slot_class_scores.take(tube_slots.ravel().take(row), axis=0)  # (n, C)
    diff -= candidate_class_scores.reshape(c * kp, -1).take(box, axis=0)
    # float64, and the operations of ReferenceTubeLinker._edge in the same order (difference,
    # square, sum over the C classes, root): the same bits, so near-ties rank alike in both.
    values = 1.0 - np.sqrt((diff * diff).sum(axis=1))
    if candidate_scores is not None:
        values += candidate_scores.ravel().take(box)
    edge = np.full(able.shape, -np.inf)
    np.put(edge, pair, values)
    return edge


def greedy_match(edge: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match as ROAD's greedy association, all classes at once: each tube takes its best box.

    Tube rows are in priority order; a tube takes the box with the highest edge among those it
    may take and no higher-priority tube of its class took (the first such box on equal edges).

    Args:
        edge: (C, Rl, Kp) float64 edge scores, -inf where the tube may not take the box; or,
            for the 'score' edge cost, bool 'may take': columns are sorted by score, so the
            best box is the first one.
        free: (C, Kp) bool, the boxes that may be taken.

    Returns:
        tubes: (n,) flat (C, Rl) rows of the tubes that take a box.
        boxes: (n,) flat (C, Kp) indices of those boxes.
    """
    c, rl, kp = edge.shape
    able = edge if edge.dtype == bool else edge > -np.inf
    # Decided for all tubes at once: a tube's favourite box is its pick in the sequential loop
    # whenever no higher-priority tube of its class could take that box at all (then the box
    # is still free at the tube's turn, and nothing better is).
    favourite = edge.argmax(axis=2)  # (C, Rl) column of each tube's best box
    wants = able.ravel().take(favourite.ravel() + _starts(c * rl, kp))  # it has a box to take
    favourite += _starts(c, kp)[:, None]
    favourite = favourite.ravel()  # flat (C, Kp) index
    first_able = able.argmax(axis=1).ravel()  # (C * Kp,) the first tube row able to take a box
    settled = first_able.take(favourite) == _ranks(c, rl)
    settled &= wants
    tubes = settled.nonzero()[0]
    boxes = favourite.take(tubes)
    wants ^= settled
    if np.count_nonzero(wants):
        # The rest, one by one in priority order: a settled tube never holds a box that a
        # higher-priority tube could take, so only their own order matters.
        free = free.copy()
        np.put(free, boxes, False)
        more_tubes, more_boxes = _sequential_match(wants.nonzero()[0], edge, free)
        tubes = np.concatenate((tubes, more_tubes))
        boxes = np.concatenate((boxes, more_boxes))
    return tubes, boxes


def _sequential_match(tubes: np.ndarray, edge: np.ndarray,
                      free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``greedy_match`` of ``tubes`` (flat (C, Rl) rows, ascending) as a plain loop."""
    c, rl, kp = edge.shape
    cls = tubes // rl
    rows = edge.reshape(-1, kp).take(tubes, axis=0)  # (n, Kp)
    able = rows.copy() if rows.dtype == bool else rows > -np.inf
    able &= free.take(cls, axis=0)
    pair = able.ravel().nonzero()[0]
    pair_tube, pair_col = np.divmod(pair, kp)  # each tube's boxes, best score first
    if rows.dtype != bool:  # best edge first, the best score (first column) on equal edges
        order = np.lexsort((-rows.ravel().take(pair), pair_tube))
        pair_tube, pair_col = pair_tube.take(order), pair_col.take(order)
    pair_box = cls.take(pair_tube) * kp + pair_col
    taken: set[int] = set()
    chosen_tubes: list[int] = []
    chosen_boxes: list[int] = []
    last = -1
    for i, b in zip(pair_tube.tolist(), pair_box.tolist()):
        if i != last and b not in taken:  # the tube's best box not taken yet
            taken.add(b)
            chosen_tubes.append(i)
            chosen_boxes.append(b)
            last = i
    return tubes.take(np.array(chosen_tubes, np.intp)), np.array(chosen_boxes, np.intp)


# Cached index arrays: building them at every frame costs 6 % of the linker's time.
@functools.lru_cache(maxsize=64)
def _starts(n: int, k: int) -> np.ndarray:
    """(n,) 0, k, 2k, ...: the flat index of each row's first entry (cached, read-only)."""
    a = np.arange(n) * k
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=64)
def _ranks(n: int, k: int) -> np.ndarray:
    """(n * k,) 0..k-1 repeated n times: the row of each flat entry (cached, read-only)."""
    a = np.tile(np.arange(k), n)
    a.flags.writeable = False
    return a
