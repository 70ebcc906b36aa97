# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""①→⑦ for many cameras, ROS-free: frames -> clips -> one batched detect -> tubes per camera.

What the node, the bag tools and the demo all run.  Two threads use it: the thread that
receives frames calls ``push`` (cheap: the frame is copied into the camera's ``FrameBuffer``),
one worker thread calls ``step`` (the model).  Latest-frame policy: each camera keeps only its
newest complete clip; a clip replaced before ``step`` took it is counted as dropped, so a model
slower than the cameras drops frames instead of building a backlog, and latency stays within
one inference.  Every frame still enters the buffer, so a clip always holds K *consecutive*
frames, as the network was trained on (paper §3).

Cameras that have a new clip in the same ``step`` run in one batched ``Detector.detect`` call
(any mix of sizes); results carry the stamp of the clip's target frame and the caller's
``meta`` of that frame (e.g. the source image header).  Time going backwards (a bag loop)
resets that camera's buffer and tubes; a change of frame size restarts its clip.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
import threading
import time
from typing import Any, Protocol, Sequence

import numpy as np

from stal_ros.config import FramesConfig, PostprocessConfig, TubeConfig
from stal_ros.frames import check_frame, check_stamp, FrameBuffer
from stal_ros.structures import Clip, Detections, LinkerStep, Tube
from stal_ros.tubes import OnlineTubeLinker, ScoreSmoother

# Tube settings the linker reads afresh on every update: safe to change while running (the
# config marks the others read-only: they size the linker's slot store).
RUNTIME_TUBE_FIELDS = tuple(name for name, field_, _ in TubeConfig.leaves()
                            if not field_.metadata['read_only'])


class DetectorLike(Protocol):
    """What the pipeline needs of ``stal_ros.net.detector.Detector``."""

    class_names: tuple[str, ...]

    def detect(self, clips: Sequence[Clip]) -> list[Detections]:
        """Detect in the target frame of each of N clips; N results in camera pixels."""


@dataclass
class CameraStats:
    """Counters of one camera since the pipeline started (they never go back)."""

    received: int = 0       # frames pushed
    processed: int = 0      # clips that went through the detector
    dropped: int = 0        # clips replaced by a newer one before the model took them
    duplicates: int = 0     # frames with the same stamp as the previous one (ignored)
    resets: int = 0         # time went backwards: buffer and tubes restarted
    restarts: int = 0       # frame size changed: clip restarted


@dataclass(frozen=True)
class CameraResult:
    """What one ``step`` produced for one camera.

    Attributes:
        camera: the camera's name.
        stamp_ns: stamp of the localised (target) frame, the source frame's stamp.
        meta: what the caller passed to ``push`` with that frame (e.g. its message header).
        frame: (H, W, 3) uint8 RGB target frame (the clip's copy).
        detections: D detections in the frame's pixels (xyxy).
        tubes: the tube linker's step at that frame (``active`` valid until the next step).
        inference_s: wall time of the batched detect call this result came from.
        batch_size: number of cameras in that call.
        stats: a copy of the camera's counters after this step.

    """

    camera: str
    stamp_ns: int
    meta: Any
    frame: np.ndarray
    detections: Detections
    tubes: LinkerStep
    inference_s: float
    batch_size: int
    stats: CameraStats


@dataclass
class _Camera:
    buffer: FrameBuffer
    linker: OnlineTubeLinker
    smoother: ScoreSmoother
    stats: CameraStats = field(default_factory=CameraStats)
    pending: Clip | None = None
    reset_tubes: bool = False
    metas: collections.deque = field(default_factory=collections.deque)  # (stamp, meta)


class Pipeline:
    """Frame buffers, one detector and tube linkers for a fixed set of cameras.

    Args:
        detector: a ``Detector`` (``build_detector``); its frames config sets K and the mode.
        tubes_config: the ``tubes`` section, one linker per camera.
        cameras: unique camera names; each is its linker's id prefix (``front/12``), so tube
            ids are unique across cameras (and, by the linker, across the process).
        frames_config: K and causal/centred; defaults to ``detector.config.frames``.

    """

    def __init__(self, detector: DetectorLike, tubes_config: TubeConfig,
                 cameras: Sequence[str], frames_config: FramesConfig | None = None) -> None:
        cameras = list(cameras)
        if not cameras or any(not isinstance(c, str) for c in cameras):
            raise ValueError(f'cameras: expected a non-empty list of names, got {cameras!r}')
        if len(set(cameras)) != len(cameras):
            raise ValueError(f'cameras: expected unique names, got {cameras!r}')
        if not isinstance(tubes_config, TubeConfig):
            raise TypeError(f'tubes_config: expected a TubeConfig, got '
                            f'{type(tubes_config).__name__}')
        if frames_config is None:
            frames_config = detector.config.frames
        self.detector = detector
        self.class_names = tuple(detector.class_names)
        self.tubes_config = tubes_config
        self._pending_postprocess: PostprocessConfig | None = None
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._cameras = {name: _Camera(FrameBuffer(frames_config),
                                       self._linker(name, tubes_config),
                                       ScoreSmoother(tubes_config, len(self.class_names)))
                         for name in cameras}

    def _linker(self, camera: str, config: TubeConfig) -> OnlineTubeLinker:
        return OnlineTubeLinker(config, len(self.class_names), id_prefix=f'{camera}/')

    @property
    def cameras(self) -> tuple[str, ...]:
        """The camera names, in construction order."""
        return tuple(self._cameras)

    def stats(self, camera: str) -> CameraStats:
        """Return a copy of the camera's counters."""
        with self._lock:
            return dataclasses.replace(self._camera(camera).stats)

    def _camera(self, camera: str) -> _Camera:
        try:
            return self._cameras[camera]
        except KeyError:
            raise ValueError(f'camera {camera!r}: expected one of {list(self._cameras)}') \
                from None

    def push(self, camera: str, frame: np.ndarray, stamp_ns: int, meta: Any = None) -> str | None:
        """Add a camera's newest frame (thread-safe; the frame is copied).

        Args:
            camera: one of ``cameras``.
            frame: (H, W, 3) uint8 RGB, any size (a view is fine: it is copied).
            stamp_ns: capture stamp in nanoseconds.
            meta: anything to hand back with this frame's result (e.g. its header).

        Returns:
            None, or a one-line event when the camera was reset (time went backwards), its
            clip restarted (new frame size) or the frame was ignored (same stamp again).

        Raises:
            TypeError, ValueError: a frame that is not (H, W, 3) uint8 or a bad stamp.
        """
        frame = check_frame(frame)
        stamp = check_stamp(stamp_ns)
        with self._ready:
            cam = self._camera(camera)
            cam.stats.received += 1
            event = None
            last = cam.buffer.last_stamp_ns
            if last is not None and stamp == last:
                cam.stats.duplicates += 1
                return f'camera {camera}: frame stamp {stamp} ns repeats the previous one: ' \
                       'frame ignored'
            if last is not None and stamp < last:
                cam.buffer.reset()
                cam.pending = None
                cam.metas.clear()
                cam.reset_tubes = True
                cam.stats.resets += 1
                event = (f'camera {camera}: time went back from {last} ns to {stamp} ns '
                         '(bag loop?): frame buffer and tubes reset')
            elif cam.buffer.resolution not in (None, frame.shape[:2]):
                cam.stats.restarts += 1
                event = (f'camera {camera}: frame size changed from {cam.buffer.resolution} '
                         f'to {frame.shape[:2]}: clip restarted')
            clip = cam.buffer.push(frame, stamp)
            cam.metas.append((stamp, meta))
            while len(cam.metas) > cam.buffer.num_frames:
                cam.metas.popleft()
            if clip is not None:
                if cam.pending is not None:
                    cam.stats.dropped += 1
                cam.pending = clip
                self._ready.notify_all()
            return event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until some camera has a clip waiting (True) or ``timeout`` seconds passed."""
        with self._ready:
            return self._ready.wait_for(self._has_pending, timeout)

    def _has_pending(self) -> bool:
        return any(cam.pending is not None for cam in self._cameras.values())

    def reset(self, camera: str | None = None) -> None:
        """Forget the frames and tubes of one camera (or all); counters are kept."""
        with self._lock:
            names = list(self._cameras) if camera is None else [camera]
            for name in names:
                cam = self._camera(name)
                cam.buffer.reset()
                cam.pending = None
                cam.metas.clear()
                cam.reset_tubes = True

    def update_thresholds(self, postprocess: PostprocessConfig | None = None,
                          tubes: TubeConfig | None = None) -> None:
        """Change the detector's post-processing and the linkers' runtime settings.

        Takes effect at the next ``step``.  Tube settings other than
        ``RUNTIME_TUBE_FIELDS`` size the linker's state and raise ``ValueError``.
        """
        if tubes is not None:
            changed = [f.name for f in dataclasses.fields(TubeConfig)
                       if getattr(tubes, f.name) != getattr(self.tubes_config, f.name)
                       and f.name not in RUNTIME_TUBE_FIELDS]
            if changed:
                raise ValueError(f'tubes.{changed[0]}: cannot change while running (expected '
                                 f'only {list(RUNTIME_TUBE_FIELDS)} to change)')
        with self._lock:
            if postprocess is not None:
                self._pending_postprocess = postprocess
            if tubes is not None:
                self.tubes_config = tubes

    def _apply_thresholds(self) -> None:
        post, self._pending_postprocess = self._pending_postprocess, None
        post_obj = getattr(self.detector, 'postprocess', None)
        if post is not None and post_obj is not None:
            for f in dataclasses.fields(PostprocessConfig):
                setattr(post_obj, f.name, getattr(post, f.name))
        for cam in self._cameras.values():
            cam.linker.config = cam.smoother.config = self.tubes_config

    def step(self) -> list[CameraResult]:
        """Run the model once over every camera with a new clip; link; return their results.

        Called from one thread at a time.  Returns an empty list when no camera has a clip.
        """
        with self._lock:
            self._apply_thresholds()
            taken = []
            for name, cam in self._cameras.items():
                if cam.reset_tubes:
                    cam.linker.reset()
                    cam.smoother.reset()
                    cam.reset_tubes = False
                if cam.pending is not None:
                    clip, cam.pending = cam.pending, None
                    meta = next((m for s, m in cam.metas if s == clip.target_stamp_ns), None)
                    taken.append((name, cam, clip, meta))
        if not taken:
            return []
        start = time.perf_counter()
        detections = self.detector.detect([clip for _, _, clip, _ in taken])
        inference_s = time.perf_counter() - start
        results = []
        for (name, cam, clip, meta), dets in zip(taken, detections):
            with self._lock:
                if cam.reset_tubes:   # time went back while the model ran: drop this clip
                    continue
                dets = cam.smoother.update(dets)
                linked = cam.linker.update(dets, clip.target_stamp_ns)
                cam.stats.processed += 1
                stats = dataclasses.replace(cam.stats)
            results.append(CameraResult(name, clip.target_stamp_ns, meta, clip.target_frame,
                                        dets, linked, inference_s, len(taken), stats))
        return results


def published_tubes(result: CameraResult, max_history: int) -> tuple[list[Tube], list[Tube]]:
    """Return what the node publishes of ``result``'s tubes: ``(active, for_the_message)``.

    ``active`` are the live tubes (their boxes at this frame make the ``Detection2DArray``);
    ``for_the_message`` are the live tubes cut to their last ``max_history`` frames followed
    by the tubes that finished at this frame, whole (the ``ActionTubeArray``).
    """
    active = result.tubes.active
    return active, [tube_tail(t, max_history) for t in active] + result.tubes.finished


def tube_tail(tube: Tube, max_frames: int) -> Tube:
    """Return ``tube`` with only its last ``max_frames`` history entries (bounded messages)."""
    if len(tube.stamps_ns) <= max_frames:
        return tube
    tail = slice(len(tube.stamps_ns) - max_frames, None)
    return dataclasses.replace(tube, stamps_ns=tube.stamps_ns[tail],
                               frame_indices=tube.frame_indices[tail], boxes=tube.boxes[tail],
                               scores=tube.scores[tail], observed=tube.observed[tail])
