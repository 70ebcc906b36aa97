# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""End-to-end smoke demo of the stack over DDS: tube linking → messages → another process.

Until the node and a trained model land, the demo's detections come from a scripted scene
(two actors walking across a 640x480 camera view, one of them briefly missed); everything after
that is the real product: the ROAD linker, the message conversions, rclpy over Fast DDS and a
second process that receives ``stal_ros/ActionTubeArray`` and ``vision_msgs/Detection2DArray``.

    python -m stal_ros.ros.demo                 # talker + listener, prints what arrives
    python -m stal_ros.ros.demo talker|listener # one side only
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from typing import Iterator, Sequence

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from stal_ros.config import TubeConfig
from stal_ros.msg import ActionTube, ActionTubeArray
from stal_ros.ros.conversions import ns_to_time, tubes_to_detections_msg, tubes_to_msg
from stal_ros.structures import Detections
from stal_ros.tubes import OnlineTubeLinker

LOG = logging.getLogger('stal_ros.ros.demo')
TUBES_TOPIC = '/stal_demo/tubes'
DETECTIONS_TOPIC = '/stal_demo/detections'
FRAME_ID = 'demo_camera'
CLASS_NAMES = ('Walking', 'WalkingWithDog', 'Fencing')
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 40_000_000  # a 25 fps camera
QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                 history=HistoryPolicy.KEEP_LAST)


def scripted_detections(num_frames: int, seed: int = 0) -> Iterator[tuple[int, Detections]]:
    """Yield (stamp_ns, detections) of the scripted scene, frame by frame.

    Actor A (class 0) walks left to right for the whole clip; actor B (class 1) walks right to
    left from frame 5 and is missed on frames 12-13 (a gap the linker bridges); a low-scoring
    false positive of class 2 flickers at the top left every 7th frame.
    """
    rng = np.random.default_rng(seed)
    for i in range(num_frames):
        boxes, scores, labels = [], [], []
        ax = 40.0 + 12.0 * i
        boxes.append([ax, 200.0, ax + 80.0, 400.0])
        scores.append(0.9)
        labels.append(0)
        if i >= 5 and i not in (12, 13):
            bx = 560.0 - 10.0 * (i - 5)
            boxes.append([bx, 180.0, bx + 70.0, 390.0])
            scores.append(0.75)
            labels.append(1)
        if i % 7 == 3:
            boxes.append([10.0, 10.0, 60.0, 60.0])
            scores.append(0.3)
            labels.append(2)
        arr = np.asarray(boxes, np.float32) + rng.normal(0, 1.5, (len(boxes), 4))
        arr[:, 2:] = np.maximum(arr[:, 2:], arr[:, :2] + 1)
        yield START_NS + i * PERIOD_NS, Detections(arr, np.asarray(scores), np.asarray(labels))


def demo_messages(num_frames: int) -> Iterator[tuple[ActionTubeArray, Detection2DArray]]:
    """Run the linker over the scripted scene; yield the two messages of every frame."""
    linker = OnlineTubeLinker(TubeConfig(), num_classes=len(CLASS_NAMES), id_prefix='demo/')
    for stamp_ns, dets in scripted_detections(num_frames):
        step = linker.update(dets, stamp_ns)
        header = Header(stamp=ns_to_time(stamp_ns), frame_id=FRAME_ID)
        tubes = list(step.active) + list(step.finished)
        yield (tubes_to_msg(header, tubes, CLASS_NAMES),
               tubes_to_detections_msg(header, step.active, stamp_ns))


def describe(msg: ActionTubeArray) -> str:
    """One human-readable line for an ``ActionTubeArray``."""
    parts = []
    for t in msg.tubes:
        state = 'finished' if t.state == ActionTube.STATE_FINISHED else 'active'
        box = t.boxes[-1] if t.boxes else None
        where = (f'({box.center.position.x:.0f},{box.center.position.y:.0f})' if box else '')
        parts.append(f'{t.id} {t.class_name} {state} len={t.length} '
                     f'score={t.score:.2f} {where}')
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return f'[{msg.header.frame_id} t={stamp:.2f}] ' + ('; '.join(parts) or 'no tubes')


def talker_main(argv: Sequence[str] | None = None) -> int:
    """Publish the demo's messages once a listener is connected."""
    parser = argparse.ArgumentParser(description='stal_ros demo talker')
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--rate', type=float, default=25.0, help='frames per second')
    parser.add_argument('--wait', type=float, default=20.0,
                        help='seconds to wait for a listener')
    args = parser.parse_args(argv)
    rclpy.init()
    node = Node('stal_demo_talker')
    try:
        pub_t = node.create_publisher(ActionTubeArray, TUBES_TOPIC, QOS)
        pub_d = node.create_publisher(Detection2DArray, DETECTIONS_TOPIC, QOS)
        deadline = time.monotonic() + args.wait
        while pub_t.get_subscription_count() < 1 or pub_d.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                node.get_logger().error('no listener appeared on the demo topics')
                return 1
            time.sleep(0.05)
        time.sleep(0.3)  # let discovery settle in both directions
        for tubes, dets in demo_messages(args.frames):
            pub_t.publish(tubes)
            pub_d.publish(dets)
            time.sleep(1.0 / args.rate)
        time.sleep(0.5)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


class Listener(Node):
    """Receives the demo topics and keeps every message."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__('stal_demo_listener')
        self.tubes: list[ActionTubeArray] = []
        self.detections: list[Detection2DArray] = []
        self.quiet = quiet
        self.create_subscription(ActionTubeArray, TUBES_TOPIC, self._on_tubes, QOS)
        self.create_subscription(Detection2DArray, DETECTIONS_TOPIC, self.detections.append,
                                 QOS)

    def _on_tubes(self, msg: ActionTubeArray) -> None:
        self.tubes.append(msg)
        if not self.quiet:
            sys.stdout.write(describe(msg) + '\n')
            sys.stdout.flush()


def listener_main(argv: Sequence[str] | None = None) -> int:
    """Print the demo's tube messages until ``--frames`` arrived (0) or ``--timeout`` (1)."""
    parser = argparse.ArgumentParser(description='stal_ros demo listener')
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--timeout', type=float, default=30.0)
    args = parser.parse_args(argv)
    rclpy.init()
    node = Listener()
    try:
        deadline = time.monotonic() + args.timeout
        while (len(node.tubes) < args.frames or len(node.detections) < args.frames) \
                and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        ids = {t.id for m in node.tubes for t in m.tubes}
        sys.stdout.write(f'received {len(node.tubes)} ActionTubeArray and '
                         f'{len(node.detections)} Detection2DArray messages, '
                         f'{len(ids)} tubes: {sorted(ids)}\n')
        return 0 if len(node.tubes) >= args.frames else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Run talker and listener as two processes (or one side, see module doc)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'talker':
        return talker_main(argv[1:])
    if argv and argv[0] == 'listener':
        return listener_main(argv[1:])
    parser = argparse.ArgumentParser(description='stal_ros demo: talker + listener')
    parser.add_argument('--frames', type=int, default=50)
    frames = ['--frames', str(parser.parse_args(argv).frames)]
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    LOG.info('stal_ros demo: scripted detections -> ROAD tube linker -> ActionTubeArray and '
             'Detection2DArray over DDS -> a second process (no trained model ships yet)')
    listener = subprocess.Popen([sys.executable, '-m', 'stal_ros.ros.demo', 'listener', *frames])
    talker = subprocess.run([sys.executable, '-m', 'stal_ros.ros.demo', 'talker', *frames])
    rc = listener.wait(timeout=60)
    return rc or talker.returncode


if __name__ == '__main__':
    sys.exit(main())
