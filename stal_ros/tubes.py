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

Vectorised across classes: the live tubes sit in (C, R) slot arrays (C classes, R slots per
class) and the candidate boxes in (C, Kp) padded arrays, so a frame costs a fixed number of
numpy calls whatever the number of classes; one IoU call serves both the NMS and the
association.  The greedy association (sequential in ROAD) is decided for all tubes at once,
and a tube's pick is final when no higher-priority tube of its class could take that box;
the few tubes left are then decided one by one in priority order.  That is exactly the
sequential result: ``stal_ros.bench_tubes.ReferenceTubeLinker`` is the plain loop the linker
is tested against.

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

import numpy as np

from stal_ros.config import TubeConfig
from stal_ros.structures import Detections
from stal_ros.tube_state import (allocate_tube_numbers, box_iou, LinkerStep, SlotStore, Tube,
                                 TubeBatch)

__all__ = ['LinkerStep', 'OnlineTubeLinker', 'Tube', 'allocate_tube_numbers', 'box_iou',
           'check_frame', 'greedy_nms']


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
    k = valid.shape[1]
    keep = valid
    if k > 1:
        # sup[c, j, i]: the better valid box j would suppress i > j.
        sup = iou > iou_threshold
        sup &= _upper(k)
        sup &= valid[:, :, None]
        hit = sup.any(axis=1)
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
            pc, pcs, valid = cand
            prio = self._priority()
            boxes = pc[:, :, :4]
            if prio is None:
                keep = greedy_nms(box_iou(boxes, boxes), valid, cfg.nms_iou, cfg.top_k)
            else:
                # One IoU call for both: rows 0..Rl-1 are the tubes' last boxes, then the
                # frame's boxes for the per-class NMS.
                rl = prio[0].shape[1]
                lbox = st.cur.take(prio[0].ravel(), axis=0)[:, :4].reshape(-1, rl, 4)
                iou = box_iou(np.concatenate((lbox, boxes), axis=1), boxes)
                keep = greedy_nms(iou[:, rl:], valid, cfg.nms_iou, cfg.top_k)
            dropped = keep is not valid
            if dropped:
                pc[~keep] = 0.0  # dropped boxes: all-zero rows, which overlap nothing
            if prio is not None:
                ci, slots, ki = self._associate(iou[:, :rl], prio, pc, pcs, keep, dropped)
                if ci.size:
                    st.extend(t, slots, pc[ci, ki], None if pcs is None else pcs[ci, ki])
                    keep[ci, ki] = False
        finished = self._finish(st.miss(t, cfg.jump_gap))
        if cand is not None:
            nc, nk = keep.nonzero()  # class-major, best box first: the order tubes start in
            if nc.size:
                slots = st.free_slots(nc, self._max_slots)
                st.start(t, int(stamp_ns), slots, pc[nc, nk],
                         None if pcs is None else pcs[nc, nk])
        if cfg.min_publish_length == 1:
            num_active = int(np.count_nonzero(st.live))
        else:
            num_active = self._publishable(st.live.nonzero()[0]).size
        return LinkerStep(t, int(stamp_ns), num_active, finished, build=self._build_active)

    def flush(self) -> list[Tube]:
        """Finish every live tube (end of stream) and return them; ids are not reused."""
        batch = self._finish(self._store.live.nonzero()[0])
        return [] if batch is None else batch.tubes()

    def _publishable(self, slots: np.ndarray) -> np.ndarray:
        st = self._store
        if self.config.min_publish_length == 1:
            return slots
        return slots[st.last[slots] - st.first[slots] >= self.config.min_publish_length - 1]

    def _build_active(self, frame_index: int) -> list[Tube]:
        if frame_index != self._frame:
            raise RuntimeError(f'LinkerStep.active of frame {frame_index} read after frame '
                               f'{self._frame} was linked; read it before the next update()')
        slots = self._publishable(self._store.live.nonzero()[0])
        if slots.size == 0:
            return []
        return self._store.gather(slots, 'active', self.id_prefix).tubes()

    def _finish(self, slots: np.ndarray) -> TubeBatch | None:
        if slots.size == 0:
            return None
        st = self._store
        report = self._publishable(slots)
        batch = st.gather(report, 'finished', self.id_prefix) if report.size else None
        st.free(slots)
        return batch

    def _candidates(self, det: Detections):
        """Per-class filtering and padding of a frame's boxes, or None if none is left.

        Returns:
            pc: (C, Kp, 6) float32 rows (x1, y1, x2, y2, score, 1) per class, best first;
                padding rows are all zeros.
            pcs: (C, Kp, C) float32 class scores, or None for the 'score' edge cost.
            valid: (C, Kp) bool, False for padding.
        """
        boxes, scores, labels, cs = det.boxes, det.scores, det.labels, det.class_scores
        keep = scores > self.config.score_threshold
        if np.count_nonzero(keep) < keep.size:
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            cs = None if cs is None else cs[keep]
        n = scores.shape[0]
        if n == 0:
            return None
        order = np.lexsort((-scores, labels))  # class-major, best first, stable on ties
        lab = labels[order]
        counts = np.bincount(lab, minlength=self.num_classes)
        kp = int(counts.max())
        at = lab * kp + np.arange(n) - (counts.cumsum() - counts)[lab]  # flat (C, Kp) index
        c = self.num_classes
        pc = np.zeros((c * kp, 6), np.float32)
        rows = np.empty((n, 6), np.float32)
        rows[:, :4] = boxes[order]
        rows[:, 4] = scores[order]
        rows[:, 5] = 1.0
        pc[at] = rows
        valid = pc[:, 5] > 0.0
        pcs = None
        if self._store.with_cls:
            pcs = np.zeros((c * kp, c), np.float32)
            pcs[at] = cs[order]
            pcs = pcs.reshape(c, kp, c)
        return pc.reshape(c, kp, 6), pcs, valid.reshape(c, kp)

    def _priority(self):
        """Live tubes of each class by priority: (slots (C, Rl), live counts (C,)) or None.

        Priority (ROAD): mean of the last ``score_window`` observed scores, best first; older
        tube (smaller number) first on ties.  Free slots have key +inf and sort last, so the
        first nlive[c] entries of class c are its live tubes.
        """
        st = self._store
        c, r = self.num_classes, st.r
        nlive = st.live.reshape(c, r).sum(axis=1)
        rl = int(nlive.max())
        if rl == 0:
            return None
        key = st.win.sum(axis=0) / np.minimum(st.nobs, st.w)
        prio = np.lexsort((st.num.reshape(c, r), key.reshape(c, r)), axis=-1)[:, :rl]
        return prio + self._rows * r, nlive

    def _associate(self, iou, prio, pc, pcs, keep, dropped):
        """Greedy tube-to-box association; returns (class, slot, box column) of each match.

        Args:
            iou: (C, Rl, Kp) IoU of the tubes' last boxes (by priority) and the candidates.
            prio: ``_priority()``.
            pc, pcs, keep: the candidates (rows, class scores, kept mask).
            dropped: whether NMS or top-k dropped candidates after ``iou`` was computed.
        """
        cfg = self.config
        pslot, nlive = prio
        c, rl = pslot.shape
        ok = iou >= cfg.iou_threshold  # (C, Rl, Kp), tubes by priority
        cols = np.arange(rl)
        if cfg.iou_threshold <= 0.0:  # else all-zero rows (free slots, padding) fail
            ok &= (cols < nlive[:, None])[:, :, None] & keep[:, None, :]
        elif dropped:
            ok &= keep[:, None, :]
        if cfg.edge_cost == 'score':
            e = ok  # columns are sorted by score: the best available box is the first one
        else:
            lcs = self._store.cls.take(pslot.ravel(), axis=0).reshape(c, rl, c)
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
        ci, ri = safe.nonzero()
        ki = best[ci, ri]
        rest = has & ~safe
        if np.count_nonzero(rest):
            ci, ri, ki = _sequential(rest, e, ci, ri, ki)
        return ci, pslot[ci, ri], ki


def _sequential(rest: np.ndarray, e: np.ndarray, ci: np.ndarray, ri: np.ndarray,
                ki: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finish the association of the ``rest`` tubes one by one, in priority order.

    The committed picks (ci, ri, ki) are exact, and a lower-priority committed tube never
    holds a box that a higher-priority ``rest`` tube could take, so this is ROAD's loop.
    """
    claimed = np.zeros((e.shape[0], e.shape[2]), bool)
    claimed[ci, ki] = True
    uc, ur = rest.nonzero()  # class-major, priority order
    taken: set[tuple[int, int]] = set()
    out_c, out_r, out_k = [], [], []
    if e.dtype == bool:
        for c, r, row in zip(uc.tolist(), ur.tolist(), (e[uc, ur] & ~claimed[uc]).tolist()):
            for k, ok in enumerate(row):
                if ok and (c, k) not in taken:
                    taken.add((c, k))
                    out_c.append(c)
                    out_r.append(r)
                    out_k.append(k)
                    break
    else:
        rows = np.where(claimed[uc], -np.inf, e[uc, ur]).tolist()
        for c, r, row in zip(uc.tolist(), ur.tolist(), rows):
            best, bk = -np.inf, -1
            for k, v in enumerate(row):
                if v > best and (c, k) not in taken:
                    best, bk = v, k
            if bk >= 0:
                taken.add((c, bk))
                out_c.append(c)
                out_r.append(r)
                out_k.append(bk)
    return (np.concatenate([ci, np.array(out_c, np.int64)]),
            np.concatenate([ri, np.array(out_r, np.int64)]),
            np.concatenate([ki, np.array(out_k, np.int64)]))
