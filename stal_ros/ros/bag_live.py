# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``stal-bag-live``: play bags into the running node over DDS, record its outputs, score them.

    # terminal 1: the node on simulated time, whole tubes in its messages
    stal_node --ros-args -p use_sim_time:=true -r image:=/camera/image_raw
    # terminal 2: play, record, score
    stal-bag-live bags/test --out reports/live --record runs/live_outputs

Each bag's camera images are published on their topic at the recorded rate (``--rate`` times
it), each preceded by ``/clock`` at its header stamp, so a node with ``use_sim_time`` runs on
the bag's time.  The node's ``detections`` and ``tubes`` are recorded (``--record`` writes them
as bags, with the ground truth) and scored against the bag's ground truth by header stamp with
the code that scores offline runs (``stal_ros.bags.score``).  The report counts frames the node
published nothing for: the warm-up frames of each bag (with ``frames.pad``, the default, the
last (K - 1) // 2 of centred clips, which wait for frames that never come; without it the first
K - 1) and frames it dropped.
``--launch-node MODEL`` starts the node itself (as ``stal.launch.py`` would) for the run.
``--lockstep`` waits for each frame's outputs before sending the next, so that nothing is
dropped however slow the machine: then live and offline results agree exactly.  A model with
centred clips localises a frame once the frames after it arrived: the player learns that
latency from the node's first output and waits for the frame it can localise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Any, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from stal_ros.bags.cli import DEFAULT_TOPIC, find_bags
from stal_ros.bags.io import BagError, BagReader, COMPRESSED, IMAGE_TYPES
from stal_ros.bags.offline import write_outputs
from stal_ros.bags.score import (FrameIndex, ground_truth_annotations, GT_TOPIC, score,
                                 video_outputs, VideoOutputs)
from stal_ros.bags.types import typestore
from stal_ros.config import ConfigError
from stal_ros.frames import latency_frames
from stal_ros.messages import time_to_ns
from stal_ros.msg import ActionTubeArray
from stal_ros.net.checkpoint import CheckpointError, load_checkpoint
from stal_ros.ros.launch_spec import fastdds_env, stal_node_spec
from stal_ros.ros.params import resolve_model

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class Received:
    """The node's outputs of one bag, in arrival order, and the stamps each output had."""

    detections: list[Any] = field(default_factory=list)
    tubes: list[Any] = field(default_factory=list)
    detection_stamps: set[int] = field(default_factory=set)
    tube_stamps: set[int] = field(default_factory=set)


class BagPlayer(Node):
    """Publishes a camera and ``/clock``; subscribes to the node's outputs.

    Args:
        image_topic: where the images go.
        compressed: publish ``CompressedImage`` instead of ``Image``.
        outputs: the namespace of the node's outputs (``''``: ``/detections``, ``/tubes``,
            ``/label_info``).
    """

    def __init__(self, image_topic: str, compressed: bool, outputs: str = '') -> None:
        super().__init__('stal_bag_live')
        prefix = '/' + outputs.strip('/') + '/' if outputs.strip('/') else '/'
        self.clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.image_pub = self.create_publisher(CompressedImage if compressed else Image,
                                               image_topic, RELIABLE)
        self._lock = threading.Condition()
        self.received = Received()
        self.labels: LabelInfo | None = None
        # Frames between the newest frame sent and the one localised: learned in lockstep from
        # the first output (0: causal clips; (K - 1) // 2: centred ones), None before.
        self.latency_frames: int | None = None
        self.create_subscription(Detection2DArray, prefix + 'detections', self._on_detections,
                                 RELIABLE)
        self.create_subscription(ActionTubeArray, prefix + 'tubes', self._on_tubes, RELIABLE)
        self.create_subscription(LabelInfo, prefix + 'label_info', self._on_labels, LATCHED)

    def _on_detections(self, msg: Detection2DArray) -> None:
        with self._lock:
            self.received.detections.append(msg)
            self.received.detection_stamps.add(time_to_ns(msg.header.stamp))
            self._lock.notify_all()

    def _on_tubes(self, msg: ActionTubeArray) -> None:
        with self._lock:
            self.received.tubes.append(msg)
            self.received.tube_stamps.add(time_to_ns(msg.header.stamp))
            self._lock.notify_all()

    def _on_labels(self, msg: LabelInfo) -> None:
        with self._lock:
            self.labels = msg
            self._lock.notify_all()

    def take(self) -> Received:
        """Return what arrived so far and start collecting afresh."""
        with self._lock:
            got, self.received = self.received, Received()
            return got

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the node's labels arrived (its model is loaded) and it subscribes."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.labels is None or self.image_pub.get_subscription_count() == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def wait_output(self, stamp_ns: int, timeout: float) -> bool:
        """Wait until both outputs of the frame stamped ``stamp_ns`` arrived."""
        return self.wait_any_output([stamp_ns], timeout) is not None

    def wait_any_output(self, stamps: Sequence[int], timeout: float) -> int | None:
        """Wait until both outputs of one of ``stamps`` arrived; return the newest one's index.

        None if none arrived within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = self.received
                done = [i for i, s in enumerate(stamps)
                        if s in got.detection_stamps and s in got.tube_stamps]
                if done:
                    return done[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(min(left, 0.1))

    def wait_quiet(self, quiet: float, timeout: float) -> None:
        """Wait until no output arrived for ``quiet`` seconds (at most ``timeout``)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self.received.detections) + len(self.received.tubes)
            if count == last:
                return
            last = count
            time.sleep(quiet)


@dataclass
class LiveRun:
    """One bag played into the node."""

    path: Path
    index: FrameIndex
    received: Received
    gt_msgs: list[Any]
    sent: int


def play_bag(player: BagPlayer, path: Path, topic: str, *, rate: float, lockstep: bool,
             warmup: int, timeout: float) -> LiveRun:
    """Play one bag into the node and collect the outputs of its frames."""
    with BagReader(path) as bag:
        frames = list(bag.raw_messages(topic, IMAGE_TYPES))
        gt_msgs = ([m for _, _, m in bag.messages(GT_TOPIC)] if GT_TOPIC in bag.topics else [])
    if not frames:
        raise BagError(path, 'no camera images', topic)
    cls = CompressedImage if frames[0][1] == COMPRESSED else Image
    msgs = [deserialize_message(raw, cls) for _, _, raw in frames]
    player.take()
    start_wall, start_log = time.monotonic(), frames[0][0]
    stamps = []
    for i, ((log_time, _, _), msg) in enumerate(zip(frames, msgs)):
        if not lockstep:
            delay = (log_time - start_log) * 1e-9 / rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
        stamp = time_to_ns(msg.header.stamp)
        stamps.append(stamp)
        player.clock_pub.publish(Clock(clock=msg.header.stamp))
        player.image_pub.publish(msg)
        if lockstep and i >= warmup:
            if player.latency_frames is None:
                # The first output tells how late the model localises: 0 frames with causal
                # clips, (K - 1) // 2 with centred ones (the target waits for later frames).
                newest = player.wait_any_output(stamps, timeout)
                if newest is not None:
                    player.latency_frames = i - newest
                    continue
            elif player.wait_output(stamps[i - player.latency_frames], timeout):
                continue
            player.get_logger().warning(f'{path.name}: no output for frame {i} within '
                                        f'{timeout:g} s; going on')
    if not lockstep:
        # The newest frame the node can localise: the last one, or (centred clips) one of
        # the last few; then whatever is still on its way.
        late = warmup if player.latency_frames is None else player.latency_frames
        player.wait_any_output(stamps[-1 - late:], timeout)
    player.wait_quiet(0.5, timeout)
    return LiveRun(path, FrameIndex(path.name, stamps), player.take(), gt_msgs, len(stamps))


def outputs_of_live(run: LiveRun) -> VideoOutputs:
    """Score-ready outputs of a live run (only the messages of this bag's frames)."""
    mine = set(run.index.stamps)
    dets = [m for m in run.received.detections if time_to_ns(m.header.stamp) in mine]
    tubes = [m for m in run.received.tubes if time_to_ns(m.header.stamp) in mine]
    if not run.gt_msgs:
        raise ValueError(f'{run.path}: the bag has no {GT_TOPIC} topic to score against')
    return video_outputs(run.index, ground_truth_annotations(run.index, run.gt_msgs), dets,
                         tubes)


def record(path: Path, run: LiveRun) -> None:
    """Write a live run's outputs (and the ground truth) as a bag."""
    store = typestore()

    def converted(msgs: Sequence[Any], msgtype: str) -> list[Any]:
        return [store.deserialize_cdr(serialize_message(m), msgtype) for m in msgs]

    write_outputs(path, converted(run.received.detections, 'vision_msgs/msg/Detection2DArray'),
                  converted(run.received.tubes, 'stal_ros/msg/ActionTubeArray'), run.gt_msgs)


def launch_node(model: str, topic: str, max_history: int,
                compressed: bool = False) -> subprocess.Popen:
    """Start ``stal_node`` on simulated time for the run (as ``stal.launch.py`` would)."""
    spec = stal_node_spec(image=topic, model=model, use_sim_time=True, compressed=compressed)
    spec.parameters['tubes.max_history'] = max_history
    env = spec.environment({**os.environ, **fastdds_env()})
    return subprocess.Popen(spec.command(), env=env)   # its log goes to this terminal


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``stal-bag-live``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0].replace('``', ''))
    parser.add_argument('bags', nargs='+', help='bags or folders of bags (one video per bag)')
    parser.add_argument('--topic', default=DEFAULT_TOPIC, help=f'camera topic ({DEFAULT_TOPIC})')
    parser.add_argument('--outputs', default='',
                        help="namespace of the node's outputs ('' = /detections, /tubes)")
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed (1.0: recorded)')
    parser.add_argument('--lockstep', action='store_true',
                        help="wait for each frame's outputs before the next frame (no drops)")
    parser.add_argument('--warmup', type=int, default=None,
                        help='frames of a bag that give no output ((K - 1) // 2 for a model '
                        'with padded centred clips, K - 1 unpadded; default: from the '
                        '--launch-node model, else 2)')
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds to wait for the node and for a frame in lockstep')
    parser.add_argument('--launch-node', metavar='MODEL',
                        help='start stal_node with this model for the run')
    parser.add_argument('--record', help='folder to write the outputs as bags (one per bag)')
    parser.add_argument('--out', help='folder for report.json and the PR plots')
    parser.add_argument('--iou', type=float, default=0.5, help='frame-AP IoU threshold')
    args = parser.parse_args(argv)
    if not args.rate > 0:
        parser.error(f'--rate {args.rate}: expected > 0')
    if args.warmup is None:
        args.warmup = 2
        if args.launch_node:
            try:
                args.warmup = clip_warmup(args.launch_node)
            except (ConfigError, CheckpointError) as exc:
                parser.error(f'--launch-node {args.launch_node}: {exc}')
    elif args.warmup < 0:
        parser.error(f'--warmup {args.warmup}: expected >= 0')
    try:
        bags = find_bags(args.bags)
        with BagReader(bags[0]) as bag:     # the camera's message type sets the publisher's
            compressed = bag.topics.get(args.topic) == COMPRESSED
    except BagError as exc:
        parser.error(str(exc))
    proc = None
    if args.launch_node:
        longest = 0
        for path in bags:
            with BagReader(path) as bag:
                longest = max(longest, bag.count(args.topic))
        proc = launch_node(args.launch_node, args.topic, max(longest, 30), compressed)
    rclpy.init()
    player = BagPlayer(args.topic, compressed=compressed, outputs=args.outputs)
    executor = SingleThreadedExecutor()
    executor.add_node(player)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        return _run(player, bags, args)
    except (BagError, ValueError) as exc:
        sys.stderr.write(f'stal-bag-live: {exc}\n')
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130
    finally:
        executor.shutdown()
        player.destroy_node()
        rclpy.try_shutdown()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def clip_warmup(model: str) -> int:
    """Frames of a bag the live node gives no output for with ``model``.

    Padded clips (``frames.pad``): the last ``latency_frames`` (a live stream does not end,
    so they wait for later frames); the first frames are localised.  Unpadded: the first
    K - 1, which never fill a clip.  Lockstep play waits for outputs from this frame on.
    """
    frames = load_checkpoint(resolve_model(model)).config.frames
    return latency_frames(frames) if frames.pad else frames.num_frames - 1


def _run(player: BagPlayer, bags: list[Path], args: argparse.Namespace) -> int:
    from stal_ros.evaluate import print_report, write_report
    if not player.wait_ready(args.timeout * 4):
        raise ValueError(f'no stal_node answered within {args.timeout * 4:g} s (no label_info '
                         f'on {args.outputs or "/"}, or nobody subscribes {args.topic})')
    class_names = [c.class_name for c in player.labels.class_map]
    runs, outputs = [], []
    for path in bags:
        run = play_bag(player, path, args.topic, rate=args.rate, lockstep=args.lockstep,
                       warmup=args.warmup, timeout=args.timeout)
        runs.append(run)
        outputs.append(outputs_of_live(run))
        if args.record:
            record(Path(args.record) / path.name, run)
    numbers = score(outputs, class_names, iou=args.iou)
    report = print_report(numbers)
    sent = sum(r.sent for r in runs)
    published = sum(o.published for o in outputs)
    report.update({'frames_sent': sent, 'frames_published': published,
                   'frames_unpublished': sent - published,
                   'frames_dropped': sent - published - args.warmup * len(runs)})
    sys.stdout.write(f'{published} of {sent} frames published; {sent - published} without '
                     f'output ({args.warmup} warm-up frames per bag, '
                     f"{report['frames_dropped']} dropped by the node)\n")
    if args.out:
        write_report(args.out, numbers, report, {
            'mode': 'live', 'bags': [str(b) for b in bags], 'topic': args.topic,
            'rate': args.rate, 'lockstep': args.lockstep})
    return 0


if __name__ == '__main__':
    sys.exit(main())
