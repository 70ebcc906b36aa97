# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The demo: clips of the motion benchmark as a live camera into ``stal_node``.

    scripts/run_demo.sh [--videos 4] [--frames 40] [--rate 10] [--out demo_out] [--model PATH]

1. Writes ``videos`` clips of the benchmark's test split (128 x 128, ``frames`` each) back to
   back as one image folder (``<out>/stream``, lossless PNG: the node gets the real frames).
2. Starts ``stal_node`` with the model (default ``lite_dis`` = ``models/lite_dis.pt``) and
   ``stal_image_publisher`` playing that folder at ``rate`` fps, both as
   ``launch/demo.launch.py`` starts them (``demo_support.demo_specs``), here in the
   namespace ``/stal_demo``.
3. Listens to ``image_annotated`` and ``tubes`` like any other subscriber, then
   writes ``<out>/annotated.mp4`` (the node's annotated frames, scaled for display),
   ``<out>/contact_sheet.png``, ``<out>/node.log``, and prints the tubes and how they compare
   with the clips' true actions.

Exits 0 when the node published results and annotated images (it says for how many frames:
the first K - 1 only fill its K-frame clip, a slow CPU skips some by the latest-frame
policy); 1 with the reason (and the node's last output) when the model is missing, the node
does not start, dies, or publishes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Sequence

import cv2
import numpy as np

LOG = logging.getLogger('stal_demo')
START_TIMEOUT_S = 60.0     # the node imports torch and loads the model
SETTLE_S = 2.0             # results still coming after the last frame was published


class DemoError(RuntimeError):
    """A failure that ends the demo with a message (exit 1)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog='run_demo.sh', description='Play clips of the synthetic motion benchmark as a '
        'live camera into stal_node; write an annotated video and print the action tubes.')
    parser.add_argument('--videos', type=int, default=4, help='clips of the test split (4)')
    parser.add_argument('--frames', type=int, default=40, help='frames per clip (40)')
    parser.add_argument('--rate', type=float, default=10.0, help='camera frame rate (10 fps)')
    parser.add_argument('--out', default='demo_out', help='output folder (./demo_out)')
    parser.add_argument('--model', default='lite_dis',
                        help="checkpoint path or name in models/ ('lite_dis')")
    parser.add_argument('--threshold', type=float, default=0.2,
                        help='box and tube score threshold of the node (0.2)')
    parser.add_argument('--scale', type=int, default=4,
                        help='annotated video: pixels per camera pixel (4)')
    args = parser.parse_args(argv)
    if args.videos < 1 or args.frames < 3:
        parser.error(f'expected --videos >= 1 and --frames >= 3, got {args.videos} and '
                     f'{args.frames}')
    if not 0 < args.rate <= 100:
        parser.error(f'--rate {args.rate}: expected 0 < rate <= 100')
    if not 1 <= args.scale <= 16:
        parser.error(f'--scale {args.scale}: expected 1..16')
    if not 0 <= args.threshold < 1:
        parser.error(f'--threshold {args.threshold}: expected 0 <= threshold < 1')
    return args


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment of the child processes: this checkout's sources first, plus ``extra``."""
    env = {**os.environ, **extra}
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / 'package.xml').is_file():
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(checkout),
                                                          env.get('PYTHONPATH', '')]))
    return env


def tail(path: pathlib.Path, lines: int = 15) -> str:
    """Return the last lines of a log file, indented."""
    try:
        text = path.read_text(errors='replace').splitlines()[-lines:]
    except OSError:
        return '  (no output)'
    return '\n'.join('  | ' + line for line in text) or '  (no output)'


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGINT, then SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 on success, 1 with a message on failure."""
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    try:
        run(args)
    except DemoError as exc:
        LOG.error('demo failed: %s', exc)
        return 1
    except KeyboardInterrupt:
        LOG.error('demo interrupted')
        return 130
    return 0


def run(args: argparse.Namespace) -> None:
    """Run the demo (see the module doc); raise ``DemoError`` on failure."""
    started = time.monotonic()
    from stal_ros.config import ConfigError
    from stal_ros.frames import latency_frames
    from stal_ros.net.checkpoint import CheckpointError, load_checkpoint
    from stal_ros.ros import demo_support as support
    from stal_ros.ros.launch_spec import fastdds_env
    from stal_ros.ros.params import resolve_model
    try:
        model = resolve_model(args.model)
        # Centred clips localise a frame once later ones arrived: the stream's last frames
        # are never localised, so the newest result is this many frames before the end.
        latency = latency_frames(load_checkpoint(model).config.frames)
    except (ConfigError, CheckpointError) as exc:
        hint = (' (the shipped model; train it with `stal-train --config '
                'config/train/lite_dis.yaml` or pass --model PATH)'
                if args.model == 'lite_dis' else '')
        raise DemoError(f'{exc}{hint}') from None
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    videos = support.make_stream(args.videos, args.frames)
    total = support.write_stream(videos, out / 'stream')
    LOG.info('stream: %d clips of the motion benchmark test split, %d frames of 128x128 at '
             '%g fps (%.1f s) in %s', len(videos), total, args.rate, total / args.rate,
             out / 'stream')
    node_spec, pub_spec = support.demo_specs(str(out / 'stream'), rate=args.rate,
                                             model=str(model), threshold=args.threshold,
                                             wait=10.0)
    for key, value in fastdds_env().items():   # this process too: read when rclpy starts
        os.environ.setdefault(key, value)

    import rclpy
    rclpy.init(args=[])
    collector = Collector(support.NAMESPACE, total, args.rate, latency)
    node_log = out / 'node.log'
    node = publisher = None
    try:
        with open(node_log, 'w') as log_file:
            node = subprocess.Popen(node_spec.command(), env=child_env(node_spec.env),
                                    stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        LOG.info('stal_node: starting with %s (log: %s)', model, node_log)
        collector.wait_for_node(node, START_TIMEOUT_S, node_log)
        LOG.info('stal_node: ready after %.1f s; playing the stream',
                 time.monotonic() - started)
        pub_log = out / 'image_publisher.log'
        with open(pub_log, 'w') as log_file:
            publisher = subprocess.Popen(pub_spec.command(), env=child_env(pub_spec.node.env),
                                         stdout=log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        collector.play(node, publisher, total / args.rate + 30.0, node_log, pub_log)
    finally:
        stop_process(publisher)
        stop_process(node)
        collector.destroy()
        rclpy.try_shutdown()
    write_results(args, collector, videos, total, out, latency)
    LOG.info('demo finished in %.1f s', time.monotonic() - started)


class Collector:
    """The demo's subscriber: keeps the node's tube arrays and annotated images.

    It does not subscribe to the camera topic itself: the image publisher starts at its first
    subscriber, which must be the node, or the node would miss the first frames.
    """

    def __init__(self, namespace: str, total: int, rate: float, latency: int = 0) -> None:
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from stal_ros.msg import ActionTubeArray
        self.rclpy = rclpy
        self.ns = '/' + namespace
        self.total = total
        self.rate = rate
        self.latency = latency   # frames between the stream's last frame and its last result
        self.jitter = False      # frame numbers from stamps were ambiguous
        self.node = rclpy.create_node('stal_demo_collector', namespace=namespace)
        qos = QoSProfile(depth=max(50, total), history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE)
        self.tubes: list = []
        self.annotated: dict[int, np.ndarray] = {}
        self.last_result = 0.0
        self.node.create_subscription(ActionTubeArray, 'tubes', self._on_tubes, qos)
        self.node.create_subscription(Image, 'image_annotated', self._on_annotated, qos)

    def _on_tubes(self, msg) -> None:
        self.tubes.append(msg)
        self.last_result = time.monotonic()

    def _on_annotated(self, msg) -> None:
        from stal_ros.ros.conversions import time_to_ns
        from stal_ros.ros.images import image_to_rgb
        self.annotated[time_to_ns(msg.header.stamp)] = image_to_rgb(msg).copy()
        self.last_result = time.monotonic()

    def spin(self, seconds: float) -> None:
        """Process callbacks for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.rclpy.spin_once(self.node, timeout_sec=0.02)

    def _node_subscribed(self) -> bool:
        infos = self.node.get_subscriptions_info_by_topic(self.ns + '/image')
        return any(i.node_name == 'stal_node' for i in infos) and \
            self.node.count_publishers(self.ns + '/tubes') > 0 and \
            self.node.count_publishers(self.ns + '/image_annotated') > 0

    def wait_for_node(self, node, timeout: float, node_log: pathlib.Path) -> None:
        """Wait until the node subscribed to the camera and publishes its outputs."""
        deadline = time.monotonic() + timeout
        while not self._node_subscribed():
            if node.poll() is not None:
                raise DemoError(f'stal_node exited with code {node.returncode} while starting; '
                                f'its last output ({node_log}):\n{tail(node_log)}')
            if time.monotonic() > deadline:
                raise DemoError(f'stal_node did not subscribe to {self.ns}/image within '
                                f'{timeout:g} s; its last output ({node_log}):\n'
                                f'{tail(node_log)}')
            self.spin(0.1)
        self.spin(0.5)    # let the node see this subscriber of image_annotated, too

    def play(self, node, publisher, timeout: float, node_log: pathlib.Path,
             pub_log: pathlib.Path) -> None:
        """Spin while the stream plays and until the results stop (``SETTLE_S``)."""
        deadline = time.monotonic() + timeout
        while publisher.poll() is None:
            if node.poll() is not None:
                raise DemoError(f'stal_node exited with code {node.returncode} during the '
                                f'stream; its last output ({node_log}):\n{tail(node_log)}')
            if time.monotonic() > deadline:
                raise DemoError(f'the image publisher did not finish within {timeout:.0f} s; '
                                f'its last output ({pub_log}):\n{tail(pub_log)}')
            self.spin(0.1)
        if publisher.returncode != 0:
            raise DemoError(f'the image publisher failed (exit code {publisher.returncode}); '
                            f'its last output ({pub_log}):\n{tail(pub_log)}')
        self.last_result = max(self.last_result, time.monotonic())
        while time.monotonic() - self.last_result < SETTLE_S:
            self.spin(0.05)
        if not self.tubes:
            raise DemoError(f'stal_node received the stream but published no results on '
                            f'{self.ns}/tubes; its last output ({node_log}):\n'
                            f'{tail(node_log)}')
        if not self.annotated:
            raise DemoError(f'stal_node published no annotated image on '
                            f'{self.ns}/image_annotated; its last output ({node_log}):\n'
                            f'{tail(node_log)}')

    @staticmethod
    def _stamp(msg) -> int:
        from stal_ros.ros.conversions import time_to_ns
        return time_to_ns(msg.header.stamp)

    def frame_index(self) -> dict[int, int]:
        """Map the stamps of the processed frames to stream frames.

        See ``demo_support.stream_frames``.  Two stamps on one frame (the publisher was late by
        half a period) set ``jitter``.
        """
        from stal_ros.ros.demo_support import stream_frames
        stamps = {*map(self._stamp, self.tubes), *self.annotated}
        index = stream_frames(stamps, self.total, self.rate, self.latency)
        self.jitter = len(set(index.values())) < len(index)
        return index

    def tubes_at(self, frame: int) -> list[str]:
        """Return 'id action score' of the tubes drawn in stream frame ``frame``."""
        from stal_ros.msg import ActionTube
        stamp = next((s for s, i in self.frame_index().items() if i == frame), None)
        for msg in self.tubes:
            if self._stamp(msg) == stamp:
                return [f'{t.id} {t.class_name} {t.score:.2f}'
                        + ('' if t.last_stamp == msg.header.stamp else ' (gap)')
                        for t in msg.tubes if t.state == ActionTube.STATE_ACTIVE]
        return []

    def tube_log(self):
        """Return the tube arrays as a ``demo_support.TubeLog`` in stream frames."""
        from stal_ros.msg import ActionTube
        from stal_ros.ros.conversions import bbox2d_to_xyxy, time_to_ns
        from stal_ros.ros.demo_support import TubeLog
        index = self.frame_index()
        log = TubeLog()
        for msg in self.tubes:
            for tube in msg.tubes:
                history = [(index[time_to_ns(s)], bbox2d_to_xyxy(b))
                           for s, b in zip(tube.stamps, tube.boxes) if time_to_ns(s) in index]
                log.add(tube.id, tube.class_name, tube.score,
                        tube.state == ActionTube.STATE_FINISHED, history)
        return log

    def destroy(self) -> None:
        """Destroy the rclpy node."""
        self.node.destroy_node()


def write_results(args: argparse.Namespace, collector: Collector, videos: list,
                  total: int, out: pathlib.Path, latency: int) -> None:
    """Write the annotated video and the contact sheet; print the summary.

    ``latency``: frames a result comes late (the stream's last that many get none).
    """
    from stal_ros.ros import demo_support as support
    index = collector.frame_index()
    frames = sorted(((index[s], rgb) for s, rgb in collector.annotated.items()),
                    key=lambda item: item[0])     # equal frames (jitter) keep stamp order
    height, width = frames[0][1].shape[:2]
    size = (width * args.scale, height * args.scale)
    video_path = out / 'annotated.mp4'
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*'mp4v'), args.rate, size)
    if not writer.isOpened():
        raise DemoError(f'OpenCV cannot write {video_path} (mp4v codec)')
    for _, rgb in frames:
        writer.write(cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)[:, :, ::-1])
    writer.release()
    by_frame = dict(frames)
    tiles = []
    for i in support.sheet_frames(total, args.frames):
        # The first K - 1 frames of the stream have no result: take the nearest one after.
        j = next((k for k in range(i, total) if k in by_frame), None)
        if j is None:
            continue
        truth = support.truth_at(videos, j)
        tubes = collector.tubes_at(j)
        lines = [f'clip {j // args.frames}, frame {j} ({j / args.rate:.1f} s)',
                 'truth (dashed): ' + (', '.join(n for n, _ in truth) or 'no action')]
        lines += [f'tube {t}' for t in tubes[:3]] or ['tubes: none']
        lines += [f'... and {len(tubes) - 3} more tubes'] if len(tubes) > 3 else []
        tiles.append((by_frame[j], lines,
                      np.asarray([b for _, b in truth], np.float32).reshape(-1, 4)))
    sheet_path = out / 'contact_sheet.png'
    cv2.imwrite(str(sheet_path), support.contact_sheet(tiles)[:, :, ::-1])
    results = len(collector.tubes)
    missing = total - results
    skipped = 'skipped by its latest-frame policy'
    if not missing:
        why = 'none missing'
    elif latency:
        why = (f'{missing} without: the last {latency} of the stream wait for frames after '
               f'them that never come, any others were {skipped}')
    else:
        why = f'{missing} without: {skipped}'

    lines = [f'stal_node: results for {results} of {total} frames ({why}); {len(frames)} '
             'annotated frames.',
             *(['(frame numbers approximate: the camera was late by half a period or more)']
               if collector.jitter else []),
             *support.summary_lines(collector.tube_log(), videos, args.rate),
             f'Annotated video: {video_path} ({len(frames)} frames, {size[0]}x{size[1]}, '
             f'{args.rate:g} fps)',
             f'Contact sheet: {sheet_path}']
    sys.stdout.write('\n'.join(lines) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    sys.exit(main())
