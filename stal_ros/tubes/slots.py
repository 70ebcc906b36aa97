# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The live tubes of the online linker, held in flat slot arrays (numpy only).

Letters: C foreground classes, R slots per class, S = C x R slots (slot = class * R + r),
H history entries kept per tube (``tubes.max_history``), W score window
(``tubes.score_window``), n frames of one tube.  A tube's frames are contiguous (gaps are
filled), so its last min(length, H) entries sit in a ring indexed by ``frame % ring``
(ring = H + jump_gap + 2), and the frame stamps in a ring of the same length: memory stays
bounded on an endless stream.
"""

from __future__ import annotations

import threading

import numpy as np

from stal_ros.structures import Tube

_ID_LOCK = threading.Lock()
_NEXT_NUMBER = 0


def allocate_tube_numbers(count: int) -> int:
    """Reserve ``count`` consecutive tube numbers, unique in this process; return the first."""
    global _NEXT_NUMBER
    with _ID_LOCK:
        first = _NEXT_NUMBER
        _NEXT_NUMBER += int(count)
    return first


class TubeBatch:
    """Tubes copied out of the slot arrays at once; their ``Tube`` snapshots built on demand.

    A ``DeferredTubes`` for ``LinkerStep``.  The copy is complete, so a batch stays valid
    whatever the linker does next.

    Args:
        state: 'active' or 'finished'.
        prefix: the linker's id prefix.
        columns: per tube (m,) arrays: label, number, score_sum, num_observed, start_frame,
            last_frame, start_stamp.
        ends: (m,) end of each tube's frames in the per-frame arrays (cumulative lengths).
        frames, stamps: (sum n,) int64 frame indices and stamps of every gathered frame.
        entries: (sum n, 6) float32 box, score and observed flag of every gathered frame.
    """

    def __init__(self, state: str, prefix: str, columns: dict[str, np.ndarray],
                 ends: np.ndarray, frames: np.ndarray, stamps: np.ndarray,
                 entries: np.ndarray) -> None:
        self.state, self.prefix, self.columns, self.ends = state, prefix, columns, ends
        self.frames, self.stamps, self.entries = frames, stamps, entries

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def tubes(self) -> list[Tube]:
        """One ``Tube`` per gathered tube, in gather order."""
        col = self.columns
        boxes = np.ascontiguousarray(self.entries[:, :4])
        scores = np.ascontiguousarray(self.entries[:, 4])
        observed = self.entries[:, 5] > 0
        frames, stamps = self.frames, self.stamps
        for arr in (boxes, scores, observed, stamps, frames):
            arr.flags.writeable = False
        # Python lists: one conversion per column, not one numpy scalar per tube and field.
        score = (col['score_sum'] / col['num_observed']).tolist()
        number, label = col['number'].tolist(), col['label'].tolist()
        num_observed, start_stamp = col['num_observed'].tolist(), col['start_stamp'].tolist()
        start_frame, last_frame = col['start_frame'].tolist(), col['last_frame'].tolist()
        last_stamp = stamps[self.ends - 1].tolist()
        out = []
        a = 0
        for i, b in enumerate(self.ends.tolist()):
            out.append(Tube(f'{self.prefix}{number[i]}', label[i], score[i], self.state,
                            start_stamp[i], last_stamp[i], start_frame[i], last_frame[i],
                            num_observed[i], stamps[a:b], frames[a:b], boxes[a:b],
                            scores[a:b], observed[a:b]))
            a = b
        return out


class SlotStore:
    """Every live tube of one linker, in flat arrays over S = C x R slots.

    Per slot: ``live``, tube ``number``, ``num_observed`` frames, ``score_sum`` of the
    observed scores, ``start_frame``/``last_frame`` (first and last observed),
    ``start_stamp``, ``recent_scores`` (W, S) the last W observed scores (a ring by
    observation count; -inf in a free slot, so free slots sort last), ``class_scores`` (S, C)
    float64 of the last observed box (for the class-score edge costs, else None).
    ``history`` (ring, S, 6) holds each frame's entry of every slot, a float32 row (x1, y1, x2,
    y2, score, observed flag), so that one write stores it.

    ``begin_frame(t)`` first fills ``entries(t)`` with every slot's previous entry marked not
    observed (ROAD's gap filling), then the tubes extended or started at t overwrite theirs:
    after that a live tube's entry holds its last box, and a free slot's entry is all zeros
    (it overlaps nothing).  R grows on demand (the linker bounds it).
    """

    _SLOT_AXIS = {'recent_scores': 1, 'history': 1}  # where the slot axis is; else 0

    def __init__(self, num_classes: int, slots_per_class: int, max_history: int, window: int,
                 jump_gap: int, with_class_scores: bool) -> None:
        self.num_classes, self.max_history, self.window = num_classes, max_history, window
        self.with_class_scores = with_class_scores
        # A tube's ring holds at least H + jump_gap + 1 entries: the gap fills written while
        # it misses frames (at most jump_gap + 1) must not overwrite any of the last H
        # entries it still reports.  The stamps need H + jump_gap + 2; one ring serves both.
        self.ring = max_history + jump_gap + 2
        self.stamps = np.zeros(self.ring, np.int64)
        self.slots_per_class = 0
        self._allocate(slots_per_class)

    def _allocate(self, r: int) -> None:
        """Resize to R = r slots per class, keeping every slot's content."""
        c, old_r = self.num_classes, self.slots_per_class
        s = c * r
        new = {
            'live': np.zeros(s, bool), 'number': np.zeros(s, np.int64),
            'num_observed': np.ones(s, np.int64), 'score_sum': np.zeros(s, np.float64),
            'start_frame': np.zeros(s, np.int64), 'last_frame': np.zeros(s, np.int64),
            'start_stamp': np.zeros(s, np.int64),
            'recent_scores': np.full((self.window, s), -np.inf),
            'class_scores': np.zeros((s, c), np.float64) if self.with_class_scores else None,
            'history': np.zeros((self.ring, s, 6), np.float32)}
        for name, arr in new.items():
            old = getattr(self, name) if old_r else None
            if old is not None:
                ax = self._SLOT_AXIS.get(name, 0)
                by_class = arr.reshape(arr.shape[:ax] + (c, r) + arr.shape[ax + 1:])
                by_class[(slice(None),) * ax + (slice(None), slice(0, old_r))] = old.reshape(
                    old.shape[:ax] + (c, old_r) + old.shape[ax + 1:])
            setattr(self, name, arr)
        self.slots_per_class = r
        self._class_starts = np.arange(c + 1) * r  # (C + 1,) first slot of each class, then S

    def entries(self, t: int) -> np.ndarray:
        """(S, 6) entries of frame t (a view)."""
        return self.history[t % self.ring]

    def begin_frame(self, t: int, stamp_ns: int) -> None:
        """Start frame t: record its stamp; every slot's entry is its entry of t - 1, not observed.

        ROAD fills a gap by repeating the last box and score, not observed, once the tube is
        matched again; writing the fill for every slot at every frame is one copy, and a tube
        that dies never reports the fills after its last observation (``ring`` keeps them from
        overwriting anything it reports).  A free slot stays all zeros.
        """
        self.stamps[t % self.ring] = stamp_ns
        row = self.entries(t)
        row[:, :5] = self.entries(t - 1)[:, :5]
        row[:, 5] = 0.0

    def extend(self, t: int, slots: np.ndarray, rows: np.ndarray,
               class_scores: np.ndarray | None) -> None:
        """Append frame t's entries ``rows`` (n, 6) to the tubes in ``slots`` (n,)."""
        self.entries(t)[slots] = rows
        n = self.num_observed.take(slots)
        score = rows[:, 4]
        self.recent_scores[n % self.window, slots] = score
        n += 1
        self.num_observed[slots] = n
        self.score_sum[slots] += score
        self.last_frame[slots] = t
        if class_scores is not None:
            self.class_scores[slots] = class_scores

    def dying(self, t: int, jump_gap: int) -> np.ndarray:
        """Live slots whose tube was last observed more than ``jump_gap`` frames before t."""
        return (self.live & (self.last_frame < t - jump_gap)).nonzero()[0]

    def free(self, t: int, slots: np.ndarray) -> None:
        """Release ``slots`` during frame t (after ``begin_frame(t)``)."""
        self.live[slots] = False
        self.entries(t)[slots] = 0.0
        self.recent_scores[:, slots] = -np.inf

    def free_slots(self, labels: np.ndarray, max_slots: int) -> np.ndarray:
        """Pick a free slot for each new tube; ``labels`` (n,): their classes, ascending.

        The j-th new tube of a class takes the class's j-th free slot; R grows (up to
        ``max_slots``) when a class has too few.
        """
        needed = np.bincount(labels, minlength=self.num_classes)
        free = (~self.live).nonzero()[0]  # ascending, so class-major
        bounds = free.searchsorted(self._class_starts)  # (C + 1,)
        short = int((needed - (bounds[1:] - bounds[:-1])).max())
        if short > 0:
            r = self.slots_per_class
            self._allocate(max(r + short, min(2 * r, max_slots)))
            free = (~self.live).nonzero()[0]
            bounds = free.searchsorted(self._class_starts)
        j = np.arange(labels.size)
        j -= labels.searchsorted(labels)  # rank of the tube among the new ones of its class
        j += bounds.take(labels)
        return free.take(j)

    def start(self, t: int, stamp_ns: int, slots: np.ndarray, rows: np.ndarray,
              class_scores: np.ndarray | None) -> None:
        """Start one tube per slot with its first entry (n, 6), numbered in slot-list order."""
        first = allocate_tube_numbers(slots.size)
        self.live[slots] = True
        self.number[slots] = np.arange(first, first + slots.size)
        self.entries(t)[slots] = rows
        if class_scores is not None:
            self.class_scores[slots] = class_scores
        score = rows[:, 4]
        self.recent_scores[:, slots] = 0.0
        self.recent_scores[0, slots] = score
        self.num_observed[slots] = 1
        self.score_sum[slots] = score
        self.start_frame[slots] = t
        self.last_frame[slots] = t
        self.start_stamp[slots] = stamp_ns

    def gather(self, slots: np.ndarray, state: str, prefix: str) -> TubeBatch:
        """Copy out the tubes in ``slots`` with their last min(length, H) frames."""
        start, last = self.start_frame.take(slots), self.last_frame.take(slots)
        n = last - start
        n += 1
        np.minimum(n, self.max_history, out=n)
        ends = n.cumsum()
        frames = (last + 1 - ends).repeat(n)  # each tube's first reported frame ...
        frames += np.arange(frames.size)  # ... plus the position in the concatenation
        ring = frames % self.ring
        at = ring * (self.num_classes * self.slots_per_class)  # flat (ring, S) index
        at += slots.repeat(n)
        columns = {'label': slots // self.slots_per_class, 'number': self.number.take(slots),
                   'score_sum': self.score_sum.take(slots),
                   'num_observed': self.num_observed.take(slots), 'start_frame': start,
                   'last_frame': last, 'start_stamp': self.start_stamp.take(slots)}
        return TubeBatch(state, prefix, columns, ends, frames, self.stamps.take(ring),
                         self.history.reshape(-1, 6).take(at, axis=0))
