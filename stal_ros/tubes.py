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
from stal_ros.tube_matching import greedy_nms, nms, sequential_pick
from stal_ros.tube_state import (allocate_tube_numbers, box_iou, coords_areas, LinkerStep,
                                 pair_iou, SlotStore, Tube, TubeBatch)

__all__ = ['LinkerStep', 'OnlineTubeLinker', 'Tube', 'allocate_tube_numbers', 'box_iou',
           'check_frame', 'greedy_nms']


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
        self._offsets: dict[tuple[int, int, bool], np.ndarray] = {}
        self._aranges = np.arange(256)
        self._ext = np.zeros((0, 6), np.float32)
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
        stamp = self._last_stamp = int(stamp_ns)
        st.stamps[t % st.stamps.shape[0]] = stamp
        st.advance(t)

        cand = self._candidates(detections)
        if cand is not None:
            pc, pcs, valid = cand
            c, kp = valid.shape
            prio = self._priority()
            cb = coords_areas(pc, c * kp)  # (5, C*Kp)
            if prio is None:
                keep = nms(pair_iou(cb, cb, c), valid, cfg.nms_iou, cfg.top_k)
            else:
                # One IoU call for both: rows 0..Rl-1 are the tubes' last boxes, then the
                # frame's boxes for the per-class NMS.
                rl = prio[0].shape[1]
                lb = coords_areas(st.row(t).take(prio[0].ravel(), axis=0), c * rl)
                iou = pair_iou(np.concatenate((lb.reshape(5, c, rl), cb.reshape(5, c, kp)),
                                              axis=2).reshape(5, -1), cb, c)
                keep = nms(iou[:, rl:], valid, cfg.nms_iou, cfg.top_k)
            if prio is not None:
                slots, fb = self._associate(iou[:, :rl], prio, pc, pcs, keep,
                                            keep is not valid)
                if fb.size:
                    st.extend(t, slots, pc.reshape(c * kp, 6).take(fb, axis=0),
                              None if pcs is None else pcs.reshape(c * kp, c).take(fb, axis=0))
                    keep.reshape(-1)[fb] = False
        finished = self._finish(t, st.dying(t, cfg.jump_gap))
        if cand is not None:
            # Class-major, best box first: the order tubes start in.
            fk = keep.reshape(-1).nonzero()[0]
            if fk.size:
                slots = st.free_slots(fk // kp, self._max_slots)
                st.start(t, stamp, slots, pc.reshape(c * kp, 6).take(fk, axis=0),
                         None if pcs is None else pcs.reshape(c * kp, c).take(fk, axis=0))
        if cfg.min_publish_length == 1:
            num_active = int(np.count_nonzero(st.live))
        else:
            num_active = self._publishable(st.live.nonzero()[0]).size
        return LinkerStep(t, stamp, num_active, finished, build=self._build_active)

    def flush(self) -> list[Tube]:
        """Finish every live tube (end of stream) and return them; ids are not reused."""
        batch = self._finish(self._frame, self._store.live.nonzero()[0])
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

    def _finish(self, t: int, slots: np.ndarray) -> TubeBatch | None:
        if slots.size == 0:
            return None
        st = self._store
        report = self._publishable(slots)
        batch = st.gather(report, 'finished', self.id_prefix) if report.size else None
        st.free(t, slots)
        return batch

    def _candidates(self, det: Detections):
        """Per-class filtering and padding of a frame's boxes, or None if none is left.

        Returns:
            pc: (C, Kp, 6) float32 rows (x1, y1, x2, y2, score, 1) per class, best first;
                padding rows are all zeros.
            pcs: (C, Kp, C) float32 class scores, or None for the 'score' edge cost.
            valid: (C, Kp) bool, False for padding.
        """
        scores = det.scores
        d = scores.shape[0]
        if d == 0:
            return None
        keep = scores > self.config.score_threshold
        n = int(np.count_nonzero(keep))
        if n == 0:
            return None
        c = self.num_classes
        # Class-major, best first, stable on ties, in one sort: labels in the high 32 bits,
        # then the score's float32 bits (ordered like the scores, as they are > 0) reversed.
        key = det.labels << 32
        key |= 0x7FFFFFFF - scores.view(np.int32)
        if n < d:
            key[~keep] = c << 32  # after every class: cut off below
        order = key.argsort(kind='stable')[:n]
        lab = det.labels.take(order)
        counts = np.bincount(lab, minlength=c)
        kp = int(counts.max())
        at = lab * kp  # flat (C, Kp) index of each kept box
        at += self._arange(n)
        at -= lab.searchsorted(lab)  # first position of the box's class
        src = np.full(c * kp, d)  # row d of ``ext`` is the all-zero padding row
        src[at] = order
        ext = self._ext
        if ext.shape[0] != d + 1:
            ext = self._ext = np.zeros((d + 1, 6), np.float32)
            ext[:d, 5] = 1.0
        ext[:d, :4] = det.boxes
        ext[:d, 4] = scores
        pc = ext.take(src, axis=0).reshape(c, kp, 6)
        valid = (src != d).reshape(c, kp)
        pcs = None
        if self._store.with_cls:
            cs = np.zeros((d + 1, c), np.float32)
            cs[:d] = det.class_scores
            pcs = cs.take(src, axis=0).reshape(c, kp, c)
        return pc, pcs, valid

    def _arange(self, n: int) -> np.ndarray:
        """0..n-1 (a cached array, not to be modified)."""
        a = self._aranges
        if a.shape[0] < n:
            a = self._aranges = np.arange(max(n, 2 * a.shape[0]))
        return a[:n]

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
        prio += self._flat_offsets(c, r)[:, None]
        return prio, nlive

    def _flat_offsets(self, n: int, k: int, tile: bool = False) -> np.ndarray:
        """(n,) 0, k, 2k, ... or, with ``tile``, (n * k,) 0..k-1 n times (cached, read-only)."""
        key = (n, k, tile)
        a = self._offsets.get(key)
        if a is None:
            if len(self._offsets) > 256:
                self._offsets.clear()
            a = self._offsets[key] = np.tile(np.arange(k), n) if tile else np.arange(n) * k
        return a

    def _associate(self, iou, prio, pc, pcs, keep, dropped):
        """Greedy tube-to-box association; returns (slots, flat (C, Kp) boxes) of the matches.

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
        if cfg.iou_threshold <= 0.0:  # else all-zero rows (free slots, padding) fail
            ok &= (np.arange(rl) < nlive[:, None])[:, :, None] & keep[:, None, :]
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
        has = ok.ravel().take(best.ravel() + self._flat_offsets(c * rl, kp))  # able to take it
        # A pick is what the sequential ROAD loop makes once no higher-priority tube could
        # take that box: then the box's first able tube (by priority) is the tube itself.
        best += self._flat_offsets(c, kp)[:, None]
        fbox = best.ravel()  # flat (C, Kp) index of each tube's pick
        safe = ok.argmax(axis=1).ravel().take(fbox) == self._flat_offsets(c, rl, tile=True)
        safe &= has
        fs = safe.nonzero()[0]  # flat (C, Rl) index of the committed tubes
        picked = fbox.take(fs)
        has ^= safe  # the tubes left
        if np.count_nonzero(has):
            keep.reshape(-1)[picked] = False  # now: boxes still free
            fr, extra = sequential_pick(has.nonzero()[0], rl, e, keep)
            fs = np.concatenate((fs, fr))
            picked = np.concatenate((picked, extra))
        return pslot.ravel().take(fs), picked
