# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑦ Online action tubes: ROAD's incremental linking, per camera and per class (numpy only).

Paper §4.7 links the per-frame detections into tubes with the online algorithm of ROAD
(Singh et al., ICCV 2017).  Per frame and class: boxes scoring above ``tubes.score_threshold``,
class-wise NMS at ``tubes.nms_iou``, the ``tubes.top_k`` best.  Live tubes of the class, ordered
by the mean of their last ``tubes.score_window`` box scores (best first, older tube first on
ties), each take in turn the unclaimed box with the highest edge score among those whose IoU
with the tube's last box is at least ``tubes.iou_threshold``; a tube unmatched for more than
``tubes.jump_gap`` consecutive frames finishes; unclaimed boxes start new tubes; when a tube is
matched again after a gap the missed frames are filled by repeating its last box.

Vectorised across classes: the state of the live tubes lives in (C, R) slot arrays (C classes,
R slots per class) and the candidate boxes in (C, Kp) padded arrays, so a frame costs a fixed
number of numpy calls whatever the number of classes.  The greedy association (sequential in
ROAD) runs in rounds; a tube's choice is committed in a round once no higher-priority
unresolved tube of its class could still take that box, which gives exactly the sequential
result (``stal_ros.bench_tubes.ReferenceTubeLinker`` is the plain loop it is tested against).

Deviations from ROAD's MATLAB code, on purpose:
- Order score: mean of the *last* ``score_window`` observed scores (ROAD sorts the scores and
  averages the highest ``jumpgap + 1``); ROAD's paper describes recent scores.
- A box whose edge score is <= 0 (possible with ``scrSim``) is still a valid match; ROAD used 0
  both as 'no edge' and as a score.
- IoU here is the continuous one (area = (x2 - x1)(y2 - y1)); the evaluation code in
  ``stal_ros.metrics`` uses inclusive pixel boxes as the benchmarks do.
- Tube score: mean of the observed box scores over the whole life (gap-filled frames excluded).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stal_ros.config import TubeConfig
from stal_ros.structures import Detections
from stal_ros.tube_state import allocate_tube_numbers, box_iou, SlotStore, Tube, TubeBatch

__all__ = ['LinkerStep', 'OnlineTubeLinker', 'Tube', 'allocate_tube_numbers', 'batched_nms',
           'box_iou', 'check_frame']


class LinkerStep:
    """What one ``update()`` reports.

    Attributes:
        frame_index: index of the frame in the stream (0 after construction or ``reset()``).
        stamp_ns: the frame's stamp.
        num_active: number of tubes in ``active``.
        finished: tubes that finished at this frame, each reported exactly once in the life of
            the linker (tubes that never reached ``tubes.min_publish_length`` are dropped).
        active: the live tubes of at least ``tubes.min_publish_length`` frames.

    Both lists hold ``Tube`` snapshots built on first access, because building them costs
    more than the linking.  ``finished`` is copied out at once and stays valid; ``active`` is
    read from the linker's state, so read it before the next ``update()``, which invalidates
    it (reading it later raises RuntimeError).
    """

    __slots__ = ('frame_index', 'stamp_ns', 'num_active', '_finished', '_active', '_build')

    def __init__(self, frame_index: int, stamp_ns: int, num_active: int,
                 finished: list[Tube] | TubeBatch | None = None,
                 active: list[Tube] | None = None,
                 build: Callable[[int], list[Tube]] | None = None) -> None:
        self.frame_index = frame_index
        self.stamp_ns = stamp_ns
        self.num_active = num_active
        self._finished = finished
        self._active = active
        self._build = build

    @property
    def finished(self) -> list[Tube]:
        """Tubes that finished at this frame."""
        if self._finished is None:
            self._finished = []
        elif isinstance(self._finished, TubeBatch):
            self._finished = self._finished.tubes()
        return self._finished

    @property
    def active(self) -> list[Tube]:
        """Live tubes after this frame, by class then slot."""
        if self._active is None:
            self._active = self._build(self.frame_index) if self._build else []
        return self._active


def batched_nms(boxes: np.ndarray, valid: np.ndarray, iou_threshold: float,
                top_k: int) -> np.ndarray:
    """Greedy NMS run independently on each row (class), then keep the ``top_k`` best.

    Args:
        boxes: (C, K, 4) float32 xyxy, each row sorted by score, best first.
        valid: (C, K) bool, False for padding.
        iou_threshold: a box is suppressed by a kept better box if their IoU is above this.
        top_k: most boxes kept per row.

    Returns:
        (C, K) bool, the boxes kept; exactly the sequential greedy result.
    """
    k = valid.shape[1]
    keep = valid
    if k > 1:
        # sup[c, j, i]: the better box j would suppress i > j.  Padding boxes are all zeros,
        # so their IoU with anything is 0 and they never suppress.
        sup = box_iou(boxes, boxes) > iou_threshold
        sup &= _upper(k)
        new = valid & ~sup.any(axis=1)  # every suppressor counted ('Fast NMS')
        # Fixed point of keep[i] = not any(keep[j] and sup[j, i]): exact greedy NMS; entry i
        # is final after i iterations, usually one more confirms it.
        while not np.array_equal(new, keep):
            keep = new
            new = valid & ~np.any(sup & keep[:, :, None], axis=1)
    if k > top_k:
        keep = keep & (np.cumsum(keep, axis=1) <= top_k)
    return keep


_UPPER: dict[int, np.ndarray] = {}


def _upper(k: int) -> np.ndarray:
    """(k, k) bool, True above the diagonal (cached)."""
    m = _UPPER.get(k)
    if m is None:
        m = _UPPER[k] = np.triu(np.ones((k, k), bool), 1)
    return m


def check_frame(det: Detections, stamp_ns: int, last_stamp_ns: int | None, num_classes: int,
                edge_cost: str) -> None:
    """Raise ValueError/TypeError naming the problem if a frame cannot be linked.

    ``Detections`` already checked boxes, scores and lengths; this adds what the linker needs:
    increasing stamps, labels < C, C columns of class scores, class scores for ``scrSim``.
    """
    if not isinstance(det, Detections):
        raise TypeError(f'detections: expected Detections, got {type(det).__name__}')
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, (int, np.integer)):
        raise TypeError(f'stamp_ns: expected an int (nanoseconds), got '
                        f'{type(stamp_ns).__name__}')
    if last_stamp_ns is not None and stamp_ns <= last_stamp_ns:
        raise ValueError(f'stamp_ns: expected stamps to increase, got {stamp_ns} after '
                         f'{last_stamp_ns} (frames going backwards; reset() to restart)')
    d = len(det)
    if d and int(det.labels.max()) >= num_classes:
        raise ValueError(f'Detections.labels: expected < num_classes = {num_classes}, '
                         f'got {int(det.labels.max())}')
    cs = det.class_scores
    if cs is not None and cs.shape[1] != num_classes:
        raise ValueError(f'Detections.class_scores: expected {num_classes} columns '
                         f'(num_classes), got {cs.shape[1]}')
    if d and cs is None and edge_cost != 'score':
        raise ValueError(f"tubes.edge_cost = '{edge_cost}' needs Detections.class_scores, "
                         'got None')


class OnlineTubeLinker:
    """ROAD online tube linking for one camera, all classes at once (paper §4.7).

    Args:
        config: the ``tubes`` section.
        num_classes: C, foreground classes; detection labels must be < C.
        id_prefix: prepended to the tube numbers (e.g. the camera name) in ``Tube.tube_id``.
            Numbers are unique across all linkers of the process, so ids never repeat.

    Memory is bounded: C x R slots with R <= top_k * (jump_gap + 1) (each frame can start or
    extend at most top_k tubes per class, and a tube lives jump_gap frames without a box), each
    keeping ``max_history`` entries; finished tubes are handed out and their slot reused.
    """

    def __init__(self, config: TubeConfig, num_classes: int, id_prefix: str = '') -> None:
        if not isinstance(config, TubeConfig):
            raise TypeError(f'config: expected TubeConfig, got {type(config).__name__}')
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 1:
            raise ValueError(f'num_classes: expected an int >= 1, got {num_classes!r}')
        self.config = config
        self.num_classes = int(num_classes)
        self.id_prefix = str(id_prefix)
        self._max_slots = config.top_k * (config.jump_gap + 1)
        self._rows = np.arange(self.num_classes)[:, None]
        self.reset()

    def reset(self) -> None:
        """Forget every tube and the stamp order (call ``flush()`` first to get them)."""
        cfg = self.config
        self._frame = -1
        self._last_stamp: int | None = None
        self._store = SlotStore(self.num_classes, min(cfg.top_k, self._max_slots),
                                cfg.max_history, cfg.score_window, cfg.jump_gap,
                                with_class_scores=cfg.edge_cost != 'score')

    @property
    def frame_index(self) -> int:
        """Index of the last frame processed (-1 before the first)."""
        return self._frame

    def update(self, detections: Detections, stamp_ns: int) -> LinkerStep:
        """Link one frame's detections.

        Args:
            detections: D boxes of the frame (labels in [0, C)); may be empty.
            stamp_ns: the frame's stamp, strictly greater than the previous one.

        Returns:
            The step: the tubes finished now and the active ones.
        """
        cfg = self.config
        check_frame(detections, stamp_ns, self._last_stamp, self.num_classes, cfg.edge_cost)
        st = self._store
        t = self._frame = self._frame + 1
        self._last_stamp = int(stamp_ns)
        st.stamps[t % st.stamps.shape[0]] = stamp_ns

        cand = self._candidates(detections)
        if cand is not None:
            pc, pcs, bv = cand
            ci, slots, ki = self._associate(pc, pcs, bv)
            if ci.size:
                st.extend(t, slots, pc[ci, ki], None if pcs is None else pcs[ci, ki])
                bv[ci, ki] = False
        finished = self._finish(st.live & (st.last < t - cfg.jump_gap))
        if cand is not None:
            nc, nk = np.nonzero(bv)  # class-major, best box first: the order tubes start in
            if nc.size:
                slots = st.free_slots(np.bincount(nc, minlength=self.num_classes),
                                      self._max_slots)
                st.start(t, int(stamp_ns), slots, pc[nc, nk],
                         None if pcs is None else pcs[nc, nk])
        num_active = int(np.count_nonzero(self._publishable(st.live)))
        return LinkerStep(t, int(stamp_ns), num_active, finished, build=self._build_active)

    def flush(self) -> list[Tube]:
        """Finish every live tube (end of stream) and return them; ids are not reused."""
        batch = self._finish(self._store.live.copy())
        return [] if batch is None else batch.tubes()

    def _publishable(self, mask: np.ndarray) -> np.ndarray:
        st = self._store
        if self.config.min_publish_length == 1:
            return mask
        return mask & (st.last - st.first >= self.config.min_publish_length - 1)

    def _build_active(self, frame_index: int) -> list[Tube]:
        if frame_index != self._frame:
            raise RuntimeError(f'LinkerStep.active of frame {frame_index} read after frame '
                               f'{self._frame} was linked; read it before the next update()')
        slots = np.flatnonzero(self._publishable(self._store.live))
        if slots.size == 0:
            return []
        return self._store.gather(slots, 'active', self.id_prefix).tubes()

    def _finish(self, mask: np.ndarray) -> TubeBatch | None:
        if not mask.any():
            return None
        st = self._store
        slots = np.flatnonzero(self._publishable(mask))
        batch = st.gather(slots, 'finished', self.id_prefix) if slots.size else None
        st.free(mask)
        return batch

    def _candidates(self, det: Detections):
        """Per-class filtering, NMS and top-k of a frame's boxes, or None if none is left.

        Returns:
            pc: (C, Kp, 6) float32 rows (x1, y1, x2, y2, score, 1) per class, best first;
                rows that are padding or not kept are all zeros.
            pcs: (C, Kp, C) float32 class scores, or None for the 'score' edge cost.
            keep: (C, Kp) bool, the kept boxes.
        """
        cfg = self.config
        boxes, scores, labels, cs = det.boxes, det.scores, det.labels, det.class_scores
        keep = scores > cfg.score_threshold
        if not keep.all():
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            cs = None if cs is None else cs[keep]
        n = scores.shape[0]
        if n == 0:
            return None
        order = np.lexsort((-scores, labels))  # class-major, best first, stable on ties
        lab = labels[order]
        counts = np.bincount(lab, minlength=self.num_classes)
        pos = np.arange(n) - (np.cumsum(counts) - counts)[lab]
        kp = int(counts.max())
        c = self.num_classes
        rows = np.empty((n, 6), np.float32)
        rows[:, :4] = boxes[order]
        rows[:, 4] = scores[order]
        rows[:, 5] = 1.0
        pc = np.zeros((c, kp, 6), np.float32)
        pc[lab, pos] = rows
        valid = np.zeros((c, kp), bool)
        valid[lab, pos] = True
        pcs = None
        if self._store.with_cls:
            pcs = np.zeros((c, kp, c), np.float32)
            pcs[lab, pos] = cs[order]
        keep = batched_nms(pc[:, :, :4], valid, cfg.nms_iou, cfg.top_k)
        if keep is not valid:
            pc[~keep] = 0.0
        return pc, pcs, keep

    def _associate(self, pc, pcs, keep):
        """Greedy tube-to-box association; returns (class, slot, box column) of each match.

        Args:
            pc: (C, Kp, 6) candidate rows from ``_candidates``.
            pcs: (C, Kp, C) class scores or None.
            keep: (C, Kp) bool, the candidates.
        """
        cfg = self.config
        st = self._store
        c, r = self.num_classes, st.r
        empty = np.zeros(0, np.int64)
        nlive = st.live.reshape(c, r).sum(axis=1)
        rl = int(nlive.max())
        if rl == 0:
            return empty, empty, empty
        # Priority: recent mean score, best first; older tube (smaller number) first on ties;
        # free slots (key +inf) last, so the first nlive[c] rows of class c are its tubes.
        key = st.win.sum(axis=0) / np.minimum(st.nobs, st.w)
        prio = np.lexsort((st.num.reshape(c, r), key.reshape(c, r)), axis=-1)[:, :rl]
        pslot = prio + self._rows * r  # (C, Rl) slots by priority
        lbox = st.cur.take(pslot.ravel(), axis=0)[:, :4].reshape(c, rl, 4)
        ok = box_iou(lbox, pc[:, :, :4]) >= cfg.iou_threshold  # (C, Rl, Kp) by priority
        cols = np.arange(rl)
        if cfg.iou_threshold <= 0.0:  # else all-zero boxes (free slots, dropped boxes) fail
            ok &= (cols < nlive[:, None])[:, :, None] & keep[:, None, :]
        if cfg.edge_cost == 'score':
            e = ok  # columns are sorted by score: the best available box is the first one
        else:
            lcs = st.cls.take(pslot.ravel(), axis=0).reshape(c, rl, c)
            d2 = ((lcs * lcs).sum(-1)[:, :, None] + (pcs * pcs).sum(-1)[:, None, :]
                  - 2.0 * np.matmul(lcs, pcs.transpose(0, 2, 1)))
            e = 1.0 - np.sqrt(np.maximum(d2, 0.0))  # 1 - L2 distance (ROAD 'scrSim')
            if cfg.edge_cost == 'scrMinusSim':
                e += pc[:, None, :, 4]
            e[~ok] = -np.inf
        kp = ok.shape[2]
        best = e.argmax(axis=2)  # (C, Rl) each tube's best box
        has = ok.reshape(-1, kp)[np.arange(c * rl), best.ravel()].reshape(c, rl)
        # A pick is what the sequential ROAD loop makes once no higher-priority tube could
        # take that box: then the box's first able tube (by priority) is the tube itself.
        first = ok.argmax(axis=1)  # (C, Kp)
        safe = has & (first[self._rows, best] == cols)
        ci, ri = np.nonzero(safe)
        ki = best[ci, ri]
        rest = has & ~safe
        if rest.any():
            ci, ri, ki = self._sequential(rest, e, ci, ri, ki)
        return ci, pslot[ci, ri], ki

    @staticmethod
    def _sequential(rest, e, ci, ri, ki):
        """Finish the association of the ``rest`` tubes one by one, in priority order.

        The committed picks are exact and a lower-priority committed tube never holds a box a
        higher-priority ``rest`` tube could take, so this is the sequential ROAD loop.
        """
        claimed = set(zip(ci.tolist(), ki.tolist()))
        uc, ur = np.nonzero(rest)  # class-major, priority order
        out_c, out_r, out_k = [], [], []
        if e.dtype == bool:
            for c, r, row in zip(uc.tolist(), ur.tolist(), e[uc, ur].tolist()):
                for k, ok in enumerate(row):
                    if ok and (c, k) not in claimed:
                        claimed.add((c, k))
                        out_c.append(c)
                        out_r.append(r)
                        out_k.append(k)
                        break
        else:
            for c, r, row in zip(uc.tolist(), ur.tolist(), e[uc, ur].tolist()):
                best, bk = -np.inf, -1
                for k, v in enumerate(row):
                    if v > best and (c, k) not in claimed:
                        best, bk = v, k
                if bk >= 0:
                    claimed.add((c, bk))
                    out_c.append(c)
                    out_r.append(r)
                    out_k.append(bk)
        return (np.concatenate([ci, np.array(out_c, np.int64)]),
                np.concatenate([ri, np.array(out_r, np.int64)]),
                np.concatenate([ki, np.array(out_k, np.int64)]))
