# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""State of the online tube linker: the ``Tube`` snapshot and the (C, R) slot arrays behind it.

Letters: C foreground classes, R tube slots per class, H history entries kept per tube
(``tubes.max_history``), W score window (``tubes.score_window``), n frames of one tube.
A tube's frames are contiguous (gaps are filled), so its last ``min(length, H)`` entries sit
in a ring indexed by ``frame % ring`` (ring >= H + jump_gap + 2), and their stamps in a ring
of the same length: memory stays bounded on an endless stream.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import threading
from typing import Callable

import numpy as np

_ID_LOCK = threading.Lock()
_NEXT_NUMBER = 0


def allocate_tube_numbers(count: int) -> int:
    """Reserve ``count`` consecutive tube numbers, unique in this process; return the first."""
    global _NEXT_NUMBER
    with _ID_LOCK:
        first = _NEXT_NUMBER
        _NEXT_NUMBER += int(count)
    return first


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous IoU of every pair: area = (x2 - x1)(y2 - y1); 0 where the union is empty.

    Args:
        a: (..., M, 4) xyxy.
        b: (..., N, 4) xyxy with the same leading shape as ``a``.

    Returns:
        (..., M, N) IoU in [0, 1], dtype of the inputs.
    """
    m, n = a.shape[-2], b.shape[-2]
    lead = a.shape[:-2]
    if b.shape[:-2] != lead:
        raise ValueError(f'box_iou: expected equal leading shapes, got {a.shape} and {b.shape}')
    g = math.prod(lead)
    return pair_iou(coords_areas(a, g * m), coords_areas(b, g * n), g).reshape(lead + (m, n))


def pair_iou(a: np.ndarray, b: np.ndarray, g: int) -> np.ndarray:
    """``box_iou`` on boxes given by ``coords_areas``: (5, G*M) and (5, G*N) -> (G, M, N)."""
    m, n = a.shape[1] // g, b.shape[1] // g
    # Coordinates first and every pair spelled out in 1-D rows: numpy is slow on short
    # broadcast inner loops, fast on long contiguous ones.  The areas are computed once per box
    # (the same float operations as per pair, so the result is the same to the bit).
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
    # union >= both areas >= 0 and union == 0 implies inter == 0: such pairs give 0.
    np.maximum(union, np.finfo(union.dtype).tiny, out=union)
    inter /= union
    return inter.reshape(g, m, n)


def coords_areas(x: np.ndarray, k: int) -> np.ndarray:
    """(5, k) rows x1, y1, x2, y2, area = (x2 - x1)(y2 - y1) of k boxes (..., >= 4), their dtype.

    Extra columns after the 4 coordinates are ignored.
    """
    out = np.empty((5, k), x.dtype)
    out[:4] = x.reshape(k, -1)[:, :4].T
    area = np.subtract(out[2], out[0], out=out[4])
    area *= out[3] - out[1]
    return out


@dataclass(frozen=True, eq=False)
class Tube:
    """Snapshot of one action tube (ROAD path) of one class.

    Attributes:
        tube_id: unique in the process, stable while the tube lives (``<prefix><number>``).
        label: foreground class index in [0, C).
        score: mean of the observed box scores over the whole life (gap fills excluded).
        state: 'active' or 'finished'.
        start_stamp_ns, last_stamp_ns: stamps of the first and last observed frames.
        start_frame, last_frame: the same as linker frame indices.
        num_observed: frames with a detection (the rest of ``length`` are gap fills).
        stamps_ns: (n,) int64 stamps of the last n = min(length, max_history) frames.
        frame_indices: (n,) int64 linker frame indices of those frames (contiguous).
        boxes: (n, 4) float32 pixel xyxy.
        scores: (n,) float32 box scores (a gap fill repeats the last observed score).
        observed: (n,) bool, False for gap-filled frames.

    The arrays are read-only views.
    """

    tube_id: str
    label: int
    score: float
    state: str
    start_stamp_ns: int
    last_stamp_ns: int
    start_frame: int
    last_frame: int
    num_observed: int
    stamps_ns: np.ndarray
    frame_indices: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    observed: np.ndarray

    @property
    def length(self) -> int:
        """Frames from the first to the last observation, gap fills included."""
        return self.last_frame - self.start_frame + 1


class TubeBatch:
    """Several tubes gathered from the slot arrays at once; ``Tube`` objects built on demand.

    The gather copies everything, so a batch stays valid whatever the linker does next.
    ``rows['hist']`` is (sum n, 6): box, score, observed flag of every gathered frame.
    """

    def __init__(self, state: str, prefix: str, cols: dict[str, np.ndarray],
                 ends: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        self.state, self.prefix, self.cols, self.ends, self.rows = state, prefix, cols, ends, rows

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def tubes(self) -> list[Tube]:
        """One ``Tube`` per gathered tube, in gather order."""
        c, r = self.cols, self.rows
        hist = r['hist']
        boxes = np.ascontiguousarray(hist[:, :4])
        scores = np.ascontiguousarray(hist[:, 4])
        obs = hist[:, 5] > 0
        stamps, frames = r['stamps'], r['frames']
        for arr in (boxes, scores, obs, stamps, frames):
            arr.flags.writeable = False
        score = (c['ssum'] / c['nobs']).tolist()
        nums, labels, nobs = c['num'].tolist(), c['label'].tolist(), c['nobs'].tolist()
        sstamp, first, last = c['sstamp'].tolist(), c['first'].tolist(), c['last'].tolist()
        lstamp = stamps[self.ends - 1].tolist()
        out = []
        a = 0
        for i, b in enumerate(self.ends.tolist()):
            out.append(Tube(f'{self.prefix}{nums[i]}', labels[i], score[i], self.state,
                            sstamp[i], lstamp[i], first[i], last[i], nobs[i], stamps[a:b],
                            frames[a:b], boxes[a:b], scores[a:b], obs[a:b]))
            a = b
        return out


class LinkerStep:
    """What one ``update()`` reports.

    Attributes:
        frame_index: index of the frame in the stream (0 after construction or ``reset()``).
        stamp_ns: the frame's stamp.
        num_active: number of tubes in ``active``.
        num_finished: number of tubes in ``finished``.
        finished: tubes that finished at this frame, each reported exactly once in the life of
            the linker (tubes that never reached ``tubes.min_publish_length`` are dropped).
        active: the live tubes of at least ``tubes.min_publish_length`` frames.

    Both lists hold ``Tube`` snapshots built on first access, because building them costs
    more than the linking.  ``finished`` is copied out at once and stays valid; ``active`` is
    read from the linker's state, so read it before the next ``update()``, which invalidates
    it (reading it later raises RuntimeError).
    """

    __slots__ = ('frame_index', 'stamp_ns', 'num_active', 'num_finished', '_finished',
                 '_active', '_build')

    def __init__(self, frame_index: int, stamp_ns: int, num_active: int,
                 finished: list[Tube] | TubeBatch | None = None,
                 active: list[Tube] | None = None,
                 build: Callable[[int], list[Tube]] | None = None) -> None:
        self.frame_index = frame_index
        self.stamp_ns = stamp_ns
        self.num_active = num_active
        self.num_finished = 0 if finished is None else len(finished)
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


class SlotStore:
    """Flat slot arrays (S = C x R slots, slot = class * R + r) holding every live tube.

    A frame's entry of a tube is a float32 row (x1, y1, x2, y2, score, observed flag) so that
    one write stores it; ``hist`` (ring / B, S, B, 6) holds them in blocks of B frames per slot:
    frame t's entries of all slots, ``row(t)``, lie close together (the per-frame writes touch
    few pages), and a tube's history is read a block at a time when it is copied out.
    ``advance(t)`` first fills ``row(t)`` with every slot's previous entry marked not observed
    (ROAD's gap fill), then the tubes extended or started at t overwrite theirs: after that a
    live tube's row holds its last box, and a free slot's row is all zeros (it overlaps
    nothing).  ``win`` holds minus the last W observed scores, window first (+inf in a free
    slot), so the linker's priority key is one sum and one division.  R grows on demand (the
    linker bounds it).
    """

    _FIELDS = ('live', 'num', 'cls', 'win', 'nobs', 'ssum', 'first', 'last', 'sstamp', 'hist')
    _SLOT_AXIS = {'win': 1, 'hist': 1}  # the others are slot-first
    _BLOCK = 8  # frames per block of ``hist``

    def __init__(self, num_classes: int, slots: int, history: int, window: int,
                 jump_gap: int, with_class_scores: bool) -> None:
        self.c, self.h, self.w = num_classes, history, window
        # The ring of a tube's rows has at least H + jump_gap + 1 entries: the gap fills
        # written while a tube misses frames (at most jump_gap + 1 of them) must not overwrite
        # any of the last H observed-or-filled entries it still reports.  The stamps need
        # H + jump_gap + 2; one length serves both (one modulo per gathered frame).
        b = self._BLOCK
        self.ring = -(-(history + jump_gap + 2) // b) * b  # whole blocks
        self.with_cls = with_class_scores
        self.stamps = np.zeros(self.ring, np.int64)
        self.r = 0
        self._allocate(slots)

    def _allocate(self, r: int) -> None:
        c, w, n, b = self.c, self.w, self.c * r, self._BLOCK
        new = {
            'live': np.zeros(n, bool), 'num': np.zeros(n, np.int64),
            'cls': np.zeros((n, c), np.float32) if self.with_cls else None,
            'win': np.full((w, n), np.inf), 'nobs': np.ones(n, np.int64),
            'ssum': np.zeros(n, np.float64), 'first': np.zeros(n, np.int64),
            'last': np.zeros(n, np.int64), 'sstamp': np.zeros(n, np.int64),
            'hist': np.zeros((self.ring // b, n, b, 6), np.float32)}
        for name in self._FIELDS:
            old = getattr(self, name, None)
            if old is not None and new[name] is not None:
                ax = self._SLOT_AXIS.get(name, 0)
                shape = new[name].shape
                dst = new[name].reshape(shape[:ax] + (c, r) + shape[ax + 1:])
                src = old.reshape(shape[:ax] + (c, self.r) + shape[ax + 1:])
                dst[(slice(None),) * ax + (slice(None), slice(0, self.r))] = src
            setattr(self, name, new[name])
        self.r = r
        # Flat (ring / B, S, B) index of ring entry i of slot 0; slot s adds s * B.
        i = np.arange(self.ring)
        self._base = (i // b) * (n * b) + i % b

    def row(self, t: int) -> np.ndarray:
        """(S, 6) entries of frame t (a strided view)."""
        i = t % self.ring
        return self.hist[i // self._BLOCK, :, i % self._BLOCK]

    def advance(self, t: int) -> None:
        """Start frame t: every slot's entry is its entry of t - 1, not observed.

        ROAD fills a gap by repeating the last box and score, not observed; writing the fill
        for every slot costs two strided copies.  Entries after a tube's last observation
        are never read, so a tube that dies keeps no fill (see ``ring`` for why none is
        overwritten), and a free slot stays all zeros.
        """
        row = self.row(t)
        row[:, :5] = self.row(t - 1)[:, :5]
        row[:, 5] = 0.0

    def extend(self, t: int, slots: np.ndarray, rows: np.ndarray,
               cls: np.ndarray | None) -> None:
        """Append frame t's rows (n, 6) to the tubes in ``slots``."""
        self.row(t)[slots] = rows
        n = self.nobs.take(slots)
        score = rows[:, 4]
        self.win[n % self.w, slots] = -score
        n += 1
        self.nobs[slots] = n
        self.ssum[slots] += score
        self.last[slots] = t
        if cls is not None:
            self.cls[slots] = cls

    def dying(self, t: int, jump_gap: int) -> np.ndarray:
        """Live slots whose tube was last observed more than ``jump_gap`` frames before t."""
        return (self.live & (self.last < t - jump_gap)).nonzero()[0]

    def free(self, t: int, slots: np.ndarray) -> None:
        """Release ``slots`` during frame t (after ``advance(t)``)."""
        self.live[slots] = False
        self.row(t)[slots] = 0.0
        self.win[:, slots] = np.inf

    def free_slots(self, nc: np.ndarray, max_slots: int) -> np.ndarray:
        """Pick a free slot for each new tube; ``nc`` (n,): their classes, ascending.

        The j-th new tube of a class takes the class's j-th free slot.
        """
        counts = np.bincount(nc, minlength=self.c)
        free = (~self.live).nonzero()[0]  # ascending, so class-major
        bounds = free.searchsorted(self._class_bounds())  # (C + 1,)
        short = int((counts - (bounds[1:] - bounds[:-1])).max())
        if short > 0:
            self._allocate(max(self.r + short, min(2 * self.r, max_slots)))
            free = (~self.live).nonzero()[0]
            bounds = free.searchsorted(self._class_bounds())
        j = np.arange(nc.size)
        j -= nc.searchsorted(nc)  # first position of the tube's class
        j += bounds.take(nc)
        return free.take(j)

    def _class_bounds(self) -> np.ndarray:
        """(C + 1,) first slot of each class, then S (cached for the current R)."""
        b = getattr(self, '_bounds', None)
        if b is None or b[1] != self.r:
            b = self._bounds = np.arange(self.c + 1) * self.r
        return b

    def start(self, t: int, stamp_ns: int, slots: np.ndarray, rows: np.ndarray,
              cls: np.ndarray | None) -> None:
        """Start one tube per slot with its first row (n, 6), numbered in slot-list order."""
        first = allocate_tube_numbers(slots.size)
        self.live[slots] = True
        self.num[slots] = np.arange(first, first + slots.size)
        self.row(t)[slots] = rows
        if cls is not None:
            self.cls[slots] = cls
        score = rows[:, 4]
        win = self.win
        win[:, slots] = 0.0
        win[0, slots] = -score
        self.nobs[slots] = 1
        self.ssum[slots] = score
        self.first[slots] = t
        self.last[slots] = t
        self.sstamp[slots] = stamp_ns

    def gather(self, slots: np.ndarray, state: str, prefix: str) -> TubeBatch:
        """Copy out the tubes in ``slots`` with their last min(length, H) frames."""
        first, last = self.first.take(slots), self.last.take(slots)
        n = last - first
        n += 1
        np.minimum(n, self.h, out=n)
        ends = n.cumsum()
        frames = (last + 1 - ends).repeat(n)
        frames += np.arange(frames.size)
        i = frames % self.ring
        at = self._base.take(i)  # flat (ring / B, S, B) index
        at += (slots * self._BLOCK).repeat(n)
        cols = {'label': slots // self.r, 'num': self.num.take(slots),
                'ssum': self.ssum.take(slots), 'nobs': self.nobs.take(slots), 'first': first,
                'last': last, 'sstamp': self.sstamp.take(slots)}
        rows = {'frames': frames, 'stamps': self.stamps.take(i),
                'hist': self.hist.reshape(-1, 6).take(at, axis=0)}
        return TubeBatch(state, prefix, cols, ends, rows)
