# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""① Frame buffer: a per-camera ring of (stamp, H x W x 3 uint8 RGB) frames -> K-frame clips.

Paper §3: the detector takes K consecutive frames.  The authors' code fed frames t-1, t, t+1
and localised t, which needs a future frame.  stal_ros is causal by default: the clip of the
newest frame t is t-K+1 .. t and its target is t, reported without delay.  The paper's centred
variant (``mode='centred'``) targets the middle frame, index K // 2 (t-1 of t-2, t-1, t for
K = 3), so its result is ``latency_frames = (K - 1) // 2`` frames late.

Streaming: each push copies the new frame into a preallocated ring (the caller may reuse its
array) and, once K frames are there, returns a ``Clip`` that owns a copy of its K frames in
time order (the ring slots are overwritten by later pushes, so a view would go stale).

Ends of a stream (``FramesConfig.pad``, on by default): a stream's first frame stands in for
the frames before it, so its first frames are localised too (causal: from the first push;
centred: frame 0 once frame (K - 1) // 2 has arrived), still one clip per push.  When a finite
stream ends (a bag, a video), ``flush()`` returns the clips of its last ``latency_frames``
frames, the last frame standing in for the frames after it.  A repeated frame keeps its stamp.
Without padding those frames get no clip.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from stal_ros.config import FramesConfig
from stal_ros.structures import Clip

_LOG = logging.getLogger(__name__)


def check_frame(frame: object) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB image; raise TypeError/ValueError naming the problem."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f'frame: expected a numpy.ndarray (H, W, 3) uint8, got '
                        f'{type(frame).__name__}')
    if frame.dtype != np.uint8:
        raise TypeError(f'frame: expected dtype uint8, got {frame.dtype}')
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f'frame: expected shape (H, W, 3), got {frame.shape}')
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f'frame: expected a non-empty image, got shape {frame.shape}')
    return frame


def check_stamp(stamp_ns: object) -> int:
    """Validate an integer nanosecond stamp (Python or numpy int, not bool)."""
    if isinstance(stamp_ns, (bool, np.bool_)) or not isinstance(stamp_ns, numbers.Integral):
        raise TypeError(f'stamp_ns: expected an int (nanoseconds), got '
                        f'{type(stamp_ns).__name__} {stamp_ns!r}')
    return int(stamp_ns)


def latency_frames(config: FramesConfig) -> int:
    """Return how many frames late a clip's target is reported: the frames after it in the clip.

    0 for causal clips (the newest frame is the target), (K - 1) // 2 for centred ones.
    """
    return (config.num_frames - 1) // 2 if config.mode == 'centred' else 0


class FrameBuffer:
    """Ring of the last K frames of one camera, emitting a ``Clip`` per push once full.

    A change of resolution restarts the buffer: the old frames cannot be stacked with the new
    ones, so no clip is produced until K frames of the new size have arrived.  A stamp not
    strictly later than the previous one raises ``ValueError`` and leaves the buffer as it was
    (the caller decides whether to ``reset()``, e.g. after a bag loops).
    """

    def __init__(self, config: FramesConfig) -> None:
        if not isinstance(config, FramesConfig):
            raise TypeError(f'FrameBuffer: expected a FramesConfig, got {type(config).__name__}')
        self.config = config
        self.num_frames = config.num_frames
        self.latency_frames = latency_frames(config)
        self.target_index = self.num_frames - 1 - self.latency_frames
        self.pad = config.pad
        self._ring: np.ndarray | None = None          # (K, H, W, 3) uint8, slot = count % K
        self._stamps = np.zeros(self.num_frames, np.int64)
        self._count = 0          # ring slots written since the last restart (repeats included)
        self._real = 0           # frames pushed since the last restart
        self._last_stamp: int | None = None

    def __len__(self) -> int:
        """Return the number of distinct frames held (at most K)."""
        return min(self._real, self.num_frames)

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(H, W) of the frames held, or None when empty."""
        return None if self._ring is None else self._ring.shape[1:3]

    @property
    def last_stamp_ns(self) -> int | None:
        """Stamp of the newest frame, or None when empty."""
        return self._last_stamp

    def reset(self) -> None:
        """Forget all frames (e.g. after a jump back in time)."""
        self._ring = None
        self._count = self._real = 0
        self._last_stamp = None

    def push(self, frame: np.ndarray, stamp_ns: int) -> Clip | None:
        """Add the newest frame; return the next clip, or None until its frames are held.

        Args:
            frame: (H, W, 3) uint8 RGB (copied; the caller may reuse it).
            stamp_ns: capture time in nanoseconds, strictly later than the previous frame's.

        Returns:
            ``Clip`` of (K, H, W, 3) frames ending at this frame, whose target is this frame
            (causal) or the one ``latency_frames`` before it (centred); None while the frames
            of the next clip are not all held (see the module docstring for ``pad``).
        """
        frame = check_frame(frame)
        stamp = check_stamp(stamp_ns)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise ValueError(f'stamp_ns: expected a stamp later than the previous frame '
                             f'({self._last_stamp} ns), got {stamp} ns')
        if self._ring is not None and self._ring.shape[1:3] != frame.shape[:2]:
            _LOG.info('frame size changed from %s to %s: restarting the frame buffer',
                      self._ring.shape[1:3], frame.shape[:2])
            self.reset()
        if self._ring is None:
            self._ring = np.empty((self.num_frames,) + frame.shape, np.uint8)
            if self.pad:            # the first frame stands in for the frames before it
                for _ in range(self.target_index):
                    self._write(frame, stamp)
        self._write(frame, stamp)
        self._real += 1
        self._last_stamp = stamp
        return self._next_clip()

    def flush(self) -> list[Clip]:
        """End the stream: return the clips of its last frames and forget every frame.

        With ``pad``, the last frame stands in for the frames after it, so the frames pushed
        but not yet localised (the last ``latency_frames``, or fewer in a short stream) get
        their clips; causal clips are never late, and without ``pad`` the list is empty.  The
        next push starts a new stream.
        """
        clips = []
        if self.pad and self._ring is not None:
            last = (self._count - 1) % self.num_frames
            frame, stamp = self._ring[last].copy(), int(self._stamps[last])
            # Every write from the K-th on returned a clip (the start's repeats stop short of K).
            while self._count - self.num_frames + 1 < self._real:
                self._write(frame, stamp)
                clip = self._next_clip()
                if clip is not None:
                    clips.append(clip)
        self.reset()
        return clips

    def _write(self, frame: np.ndarray, stamp: int) -> None:
        slot = self._count % self.num_frames
        np.copyto(self._ring[slot], frame)
        self._stamps[slot] = stamp
        self._count += 1

    def _next_clip(self) -> Clip | None:
        """Return the clip ending at the newest ring slot, or None until the ring is full."""
        if self._count < self.num_frames:
            return None
        # Oldest first: the slot after the newest one holds the oldest frame.
        slot = (self._count - 1) % self.num_frames
        order = (np.arange(1, self.num_frames + 1) + slot) % self.num_frames
        stamps = self._stamps[order]
        return Clip(frames=self._ring[order], stamps_ns=stamps,
                    target_index=self.target_index,
                    target_stamp_ns=int(stamps[self.target_index]))
