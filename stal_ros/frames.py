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
        self._ring: np.ndarray | None = None          # (K, H, W, 3) uint8, slot = count % K
        self._stamps = np.zeros(self.num_frames, np.int64)
        self._count = 0                                # frames pushed since the last restart
        self._last_stamp: int | None = None

    def __len__(self) -> int:
        """Return the number of frames held (at most K)."""
        return min(self._count, self.num_frames)

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
        self._count = 0
        self._last_stamp = None

    def push(self, frame: np.ndarray, stamp_ns: int) -> Clip | None:
        """Add the newest frame; return the clip ending at it, or None until K frames are held.

        Args:
            frame: (H, W, 3) uint8 RGB (copied; the caller may reuse it).
            stamp_ns: capture time in nanoseconds, strictly later than the previous frame's.

        Returns:
            ``Clip`` of (K, H, W, 3) frames whose target is the newest frame (causal) or the
            middle one (centred), or None while fewer than K frames of this size are held.
        """
        frame = check_frame(frame)
        stamp = check_stamp(stamp_ns)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise ValueError(f'stamp_ns: expected a stamp later than the previous frame '
                             f'({self._last_stamp} ns), got {stamp} ns')
        if self._ring is not None and self._ring.shape[1:3] != frame.shape[:2]:
            _LOG.info('frame size changed from %s to %s: restarting the frame buffer',
                      self._ring.shape[1:3], frame.shape[:2])
            self._ring = None
            self._count = 0
        if self._ring is None:
            self._ring = np.empty((self.num_frames,) + frame.shape, np.uint8)
        slot = self._count % self.num_frames
        np.copyto(self._ring[slot], frame)
        self._stamps[slot] = stamp
        self._count += 1
        self._last_stamp = stamp
        if self._count < self.num_frames:
            return None
        # Oldest first: the slot after the newest one holds the oldest frame.
        order = (np.arange(1, self.num_frames + 1) + slot) % self.num_frames
        stamps = self._stamps[order]
        return Clip(frames=self._ring[order], stamps_ns=stamps,
                    target_index=self.target_index,
                    target_stamp_ns=int(stamps[self.target_index]))
