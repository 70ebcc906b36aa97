# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""ROAD's online linking as plain loops: the linker's readable specification.

``ReferenceTubeLinker`` is Singh et al. 2017, §3, written the obvious way, a loop over
classes, tubes and boxes as in ROAD's MATLAB code.  It is the oracle of the tests (the fast
``OnlineTubeLinker`` must produce identical tubes) and the baseline of
``stal_ros.tools.bench_tubes``.  ``same_tubes`` / ``first_difference`` compare their outputs.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from stal_ros.config import TubeConfig
from stal_ros.geometry import box_iou
from stal_ros.structures import Detections, LinkerStep, Tube
from stal_ros.tubes.linker import check_frame
from stal_ros.tubes.slots import allocate_tube_numbers

__all__ = ['ReferenceTubeLinker', 'first_difference', 'same_tubes']


class ReferenceTubeLinker:
    """ROAD linking written as plain loops over classes, tubes and boxes (slow, obvious).

    Same constructor, ``update``, ``flush`` and outputs as ``OnlineTubeLinker``.  It keeps
    whole histories (only the snapshots are capped), so it is not meant for endless streams.
    """

    def __init__(self, config: TubeConfig, num_classes: int, id_prefix: str = '') -> None:
        self.config = config
        self.num_classes = num_classes
        self.id_prefix = id_prefix
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self._frame = -1
        self._last_stamp: int | None = None
        self._stamps: dict[int, int] = {}
        self._tubes: list[list[dict]] = [[] for _ in range(self.num_classes)]

    def update(self, det: Detections, stamp_ns: int) -> LinkerStep:
        """Link one frame (see ``OnlineTubeLinker.update``)."""
        cfg = self.config
        check_frame(det, stamp_ns, self._last_stamp, self.num_classes, cfg.edge_cost)
        self._last_stamp = stamp_ns
        t = self._frame = self._frame + 1
        self._stamps[t] = stamp_ns
        finished = []
        for c in range(self.num_classes):
            kept = self._nms(det, c)
            tubes = self._tubes[c]
            # Live tubes by the mean of their last W observed scores, best first, then older.
            w = cfg.score_window
            tubes.sort(key=lambda p: (-sum(p['obs'][-w:]) / len(p['obs'][-w:]), p['num']))
            claimed = set()
            for p in tubes:  # each tube in turn takes its best unclaimed box
                best, best_i = 0.0, -1
                for i in kept:
                    iou = box_iou(p['boxes'][-1][None], det.boxes[i:i + 1])[0, 0]
                    if i not in claimed and iou >= cfg.iou_threshold:
                        cs = None if det.class_scores is None else det.class_scores[i]
                        e = self._edge(p, float(det.scores[i]), cs)
                        if best_i < 0 or e > best:
                            best, best_i = e, i
                if best_i >= 0:
                    claimed.add(best_i)
                    for f in range(p['frames'][-1] + 1, t):  # gap filling
                        self._append(p, f, p['boxes'][-1], p['scores'][-1], False)
                    self._append(p, t, det.boxes[best_i], det.scores[best_i], True)
                    if det.class_scores is not None:
                        p['cls'] = det.class_scores[best_i].astype(np.float64)
            for p in list(tubes):  # unmatched for more than jump_gap frames: finished
                if t - p['frames'][-1] > cfg.jump_gap:
                    tubes.remove(p)
                    if len(p['frames']) >= cfg.min_publish_length:
                        finished.append(self._tube(p, 'finished'))
            for i in kept:  # unclaimed boxes start tubes
                if i not in claimed:
                    p = {'num': allocate_tube_numbers(1), 'label': c, 'frames': [],
                         'boxes': [], 'scores': [], 'observed': [], 'obs': [],
                         'cls': None if det.class_scores is None
                         else det.class_scores[i].astype(np.float64)}
                    self._append(p, t, det.boxes[i], det.scores[i], True)
                    tubes.append(p)
        active = [self._tube(p, 'active') for ts in self._tubes for p in ts
                  if len(p['frames']) >= cfg.min_publish_length]
        return LinkerStep(t, stamp_ns, finished, active)

    def flush(self) -> list[Tube]:
        """Finish every live tube."""
        out = [self._tube(p, 'finished') for ts in self._tubes for p in ts
               if len(p['frames']) >= self.config.min_publish_length]
        self._tubes = [[] for _ in range(self.num_classes)]
        return out

    def _nms(self, det: Detections, c: int) -> list[int]:
        """Class c's boxes above the score threshold, greedy NMS, the top_k best."""
        cfg = self.config
        cand = [i for i in range(len(det))
                if det.labels[i] == c and det.scores[i] > cfg.score_threshold]
        cand.sort(key=lambda i: -det.scores[i])
        kept: list[int] = []
        for i in cand:
            if len(kept) == cfg.top_k:
                break
            if all(box_iou(det.boxes[j:j + 1], det.boxes[i:i + 1])[0, 0] <= cfg.nms_iou
                   for j in kept):
                kept.append(i)
        return kept

    def _edge(self, tube: dict, score: float, class_scores: np.ndarray | None) -> float:
        """Edge score of a tube and a box: 'score', 'scrSim' or 'scrMinusSim'."""
        kind = self.config.edge_cost
        if kind == 'score':
            return score
        diff = tube['cls'] - class_scores.astype(np.float64)
        sim = 1.0 - float(np.sqrt((diff * diff).sum()))  # 1 - L2 distance, in float64
        return sim if kind == 'scrSim' else sim + score

    @staticmethod
    def _append(p: dict, f: int, box: np.ndarray, score: float, observed: bool) -> None:
        p['frames'].append(f)
        p['boxes'].append(np.asarray(box, np.float32))
        p['scores'].append(np.float32(score))
        p['observed'].append(observed)
        if observed:
            p['obs'].append(float(score))

    def _tube(self, p: dict, state: str) -> Tube:
        h = self.config.max_history
        frames = p['frames'][-h:]
        stamps = np.array([self._stamps[f] for f in frames], np.int64)
        return Tube(f"{self.id_prefix}{p['num']}", label=p['label'],
                    score=sum(p['obs']) / len(p['obs']), state=state,
                    start_stamp_ns=self._stamps[p['frames'][0]], last_stamp_ns=int(stamps[-1]),
                    start_frame=p['frames'][0], last_frame=p['frames'][-1],
                    num_observed=len(p['obs']), stamps_ns=stamps,
                    frame_indices=np.array(frames, np.int64),
                    boxes=np.array(p['boxes'][-h:], np.float32).reshape(-1, 4),
                    scores=np.array(p['scores'][-h:], np.float32),
                    observed=np.array(p['observed'][-h:], bool))


_FIELDS = ('label', 'state', 'start_frame', 'last_frame', 'num_observed', 'start_stamp_ns',
           'last_stamp_ns')
_ARRAYS = ('stamps_ns', 'frame_indices', 'boxes', 'scores', 'observed')


def first_difference(a: Sequence[Tube], b: Sequence[Tube]) -> str | None:
    """Describe the first difference of two tube lists, or None if they are equal.

    Equal means: the same tubes up to id numbering (compared in creation order, i.e. by the
    number that ends the id), field by field, arrays exactly, scores within 1e-9.
    """
    if len(a) != len(b):
        return f'{len(a)} tubes vs {len(b)}'

    def number(t: Tube) -> int:
        return int(re.search(r'(\d+)$', t.tube_id).group(1))

    for k, (x, y) in enumerate(zip(sorted(a, key=number), sorted(b, key=number))):
        where = f'tube {k} ({x.tube_id} vs {y.tube_id})'
        for f in _FIELDS:
            if getattr(x, f) != getattr(y, f):
                return f'{where}: {f} {getattr(x, f)!r} vs {getattr(y, f)!r}'
        if abs(x.score - y.score) > 1e-9:
            return f'{where}: score {x.score!r} vs {y.score!r}'
        for f in _ARRAYS:
            u, v = getattr(x, f), getattr(y, f)
            if not np.array_equal(u, v):
                return f'{where}: {f} {u.tolist()} vs {v.tolist()}'
    return None


def same_tubes(a: Sequence[Tube], b: Sequence[Tube]) -> bool:
    """Tell whether two tube lists are equal up to id numbering (see ``first_difference``)."""
    return first_difference(a, b) is None
