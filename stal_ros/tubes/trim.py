# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Offline tube post-processing for the evaluation: ROAD's temporal trimming and min length.

Online tubes run from the first to the last detection of an actor; an action usually covers
part of that.  ROAD (Singh et al. 2017, after Evangelidis et al.) labels each frame of a tube
'action' or 'background' with a two-label Viterbi that maximises the summed per-frame scores
minus ``alpha`` for each label switch (MATLAB ``dpEM_max``), then cuts the tube into its
'action' runs; runs shorter than ``trim.min_length`` frames are dropped.  With
``trim.enabled`` false only the minimum length applies.

Per-frame scores: the tube's box score s_t for 'action'.  ROAD's MATLAB uses the detector's
background softmax score for 'background'; stal_ros detections carry foreground scores only,
so the default background score is 1 - s_t (pass ``background_scores`` to use real ones).
A trimmed piece is scored by the mean action score over its frames.  Letters: n frames.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from stal_ros.config import TrimConfig
from stal_ros.metrics.annotations import DetectedTube
from stal_ros.structures import Tube


def viterbi_two_label(action_scores: np.ndarray, background_scores: np.ndarray,
                      alpha: float) -> np.ndarray:
    """Most likely per-frame labelling with a switch penalty (ROAD's ``dpEM_max``).

    Maximises sum_t score[label_t, t] - alpha * #{t: label_t != label_{t-1}}.  Ties prefer
    'action', as MATLAB's ``max`` prefers the first row, which is the action row there.

    Args:
        action_scores: (n,) per-frame score of 'action'.
        background_scores: (n,) per-frame score of 'background'.
        alpha: label-switch penalty (>= 0).

    Returns:
        (n,) bool, True for 'action'.
    """
    fg = np.asarray(action_scores, np.float64).reshape(-1)
    bg = np.asarray(background_scores, np.float64).reshape(-1)
    if fg.shape != bg.shape:
        raise ValueError(f'viterbi_two_label: expected scores of equal length, got {fg.size} '
                         f'and {bg.size}')
    if not (np.all(np.isfinite(fg)) and np.all(np.isfinite(bg))):
        raise ValueError('viterbi_two_label: expected finite scores, got NaN/inf')
    n = fg.size
    if n == 0:
        return np.zeros(0, bool)
    m = np.stack([fg, bg])  # (2, n): row 0 action, row 1 background
    acc = m[:, 0].copy()
    back = np.zeros((2, n), np.int64)
    switch = np.array([[0.0, alpha], [alpha, 0.0]])  # switch[i, k]: cost of k -> i
    for t in range(1, n):
        cand = acc[None, :] - switch  # (2 to, 2 from)
        back[:, t] = cand.argmax(axis=1)  # first maximum: 'action' on ties
        acc = cand[np.arange(2), back[:, t]] + m[:, t]
    labels = np.empty(n, np.int64)
    labels[-1] = int(acc.argmax())
    for t in range(n - 1, 0, -1):
        labels[t - 1] = back[labels[t], t]
    return labels == 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of the True runs of a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def trim_tube(tube: DetectedTube, config: TrimConfig,
              background_scores: np.ndarray | None = None) -> list[DetectedTube]:
    """Trim one tube temporally (if enabled) and drop pieces shorter than ``min_length``.

    Args:
        tube: a detected tube with ``frame_scores`` (n,) when trimming is enabled.
        config: the ``trim`` section.
        background_scores: (n,) per-frame background scores; default 1 - frame_scores.

    Returns:
        The pieces kept (0, 1 or more tubes of the same video and class).
    """
    n = tube.frames.size
    if not config.enabled:
        return [tube] if n >= config.min_length else []
    if tube.frame_scores is None:
        raise ValueError(f'trim_tube: tube of {tube.video!r} has no frame_scores, which the '
                         'temporal trimming needs (or set trim.enabled = false)')
    s = tube.frame_scores
    bg = 1.0 - s if background_scores is None else np.asarray(background_scores, np.float64)
    if bg.shape != s.shape:
        raise ValueError(f'background_scores: expected shape {s.shape}, got {bg.shape}')
    out = []
    for a, b in _runs(viterbi_two_label(s, bg, config.alpha)):
        if b - a >= config.min_length:
            out.append(DetectedTube(tube.video, tube.label, float(s[a:b].mean()),
                                    tube.frames[a:b], tube.boxes[a:b], s[a:b]))
    return out


def trim_tubes(tubes: Iterable[DetectedTube], config: TrimConfig) -> list[DetectedTube]:
    """Apply ``trim_tube`` to every tube and collect the pieces."""
    return [piece for tube in tubes for piece in trim_tube(tube, config)]


def detected_tube(tube: Tube, video: str, frame_offset: int = 0) -> DetectedTube:
    """Turn a linker ``Tube`` into a ``DetectedTube`` for the evaluation.

    Frame numbers are the linker's frame indices plus ``frame_offset`` (1 when the linker
    saw a video from its first frame and the annotations count from 1).  Only the history the
    tube carries is available: run the linker with ``tubes.max_history`` at least the video
    length for evaluation.

    Args:
        tube: from ``OnlineTubeLinker`` (its ``frame_indices``, ``boxes``, ``scores``).
        video: the video name.
        frame_offset: added to the frame indices.
    """
    return DetectedTube(video, tube.label, tube.score, tube.frame_indices + frame_offset,
                        tube.boxes, tube.scores)
