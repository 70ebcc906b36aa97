# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Per-camera health for ``/diagnostics``: rates, input gaps, drops, bad frames, latencies."""

from __future__ import annotations

import collections
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from stal_ros.pipeline import CameraStats

WINDOW_S = 5.0      # rates and latencies are over the last this-many seconds


class CameraMonitor:
    """Counts what happens to one camera's frames; thread-safe (executor + worker thread)."""

    def __init__(self, camera: str, topic: str) -> None:
        self.camera = camera
        self.topic = topic
        self.bad = 0
        self.annotated = 0      # image_annotated messages published (only while subscribed)
        self.last_problem = ''
        self._lock = threading.Lock()
        self._received: collections.deque = collections.deque()   # monotonic times
        self._processed: collections.deque = collections.deque()  # (time, inference, e2e)
        self._bad: collections.deque = collections.deque()        # monotonic times

    def received(self) -> None:
        """Note a frame's arrival."""
        with self._lock:
            self._received.append(time.monotonic())

    def bad_frame(self, problem: str) -> None:
        """Note a frame that could not be used."""
        with self._lock:
            self.bad += 1
            self.last_problem = problem
            self._bad.append(time.monotonic())

    def processed(self, inference_s: float, end_to_end_s: float) -> None:
        """Note a published result with its inference and stamp-to-publish latency."""
        with self._lock:
            self._processed.append((time.monotonic(), inference_s, end_to_end_s))

    def status(self, name: str, hardware_id: str, stats: CameraStats | None,
               extra: dict[str, str]) -> DiagnosticStatus:
        """Return the camera's ``DiagnosticStatus`` (WARN on bad frames, gaps or no input)."""
        now = time.monotonic()
        with self._lock:
            for queue in (self._received, self._bad):
                while queue and now - queue[0] > WINDOW_S:
                    queue.popleft()
            while self._processed and now - self._processed[0][0] > WINDOW_S:
                self._processed.popleft()
            arrivals = list(self._received)
            done = list(self._processed)
            bad, problem, recent_bad = self.bad, self.last_problem, len(self._bad)
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        if arrivals:
            gaps.append(now - arrivals[-1])
        values = {
            'topic': self.topic,
            'input rate (Hz)': f'{len(arrivals) / WINDOW_S:.2f}',
            'processed rate (Hz)': f'{len(done) / WINDOW_S:.2f}',
            'longest input gap (s)': f'{max(gaps):.3f}' if gaps else 'no input',
            'bad frames': str(bad),
            'annotated images published': str(self.annotated),
            'last bad frame': problem or 'none',
            'inference latency (ms)': _mean_ms([d[1] for d in done]),
            'end-to-end latency (ms)': _mean_ms([d[2] for d in done]),
        }
        if stats is not None:
            values.update({'frames received': str(stats.received),
                           'frames processed': str(stats.processed),
                           'dropped frames': str(stats.dropped),
                           'time resets': str(stats.resets)})
        values.update(extra)
        level, message = DiagnosticStatus.OK, 'ok'
        if not arrivals:
            level, message = DiagnosticStatus.WARN, f'no frames on {self.topic} for ' \
                f'{WINDOW_S:.0f} s'
        elif recent_bad:
            level, message = DiagnosticStatus.WARN, f'{recent_bad} bad frame(s) in the last ' \
                f'{WINDOW_S:.0f} s; last: {problem}'
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])


def _mean_ms(seconds: list[float]) -> str:
    return f'{1000.0 * sum(seconds) / len(seconds):.1f}' if seconds else 'n/a'
