# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Messages cross a real DDS link between two processes intact (rclpy over Fast DDS).

The talker is this file run as a script (``python test/test_dds.py --frames 30``): it feeds a
scripted scene through the ROAD linker and publishes the messages the node would publish; the
test (the listener) rebuilds the same messages and compares them field by field.
"""

import argparse
import os
import subprocess
import sys
import time
from typing import Iterator

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402, I100
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from stal_ros.config import TubeConfig  # noqa: E402
from stal_ros.msg import ActionTube, ActionTubeArray  # noqa: E402
from stal_ros.ros.conversions import (ns_to_time, tubes_to_detections_msg,  # noqa: E402
                                      tubes_to_msg)
from stal_ros.structures import Detections  # noqa: E402
from stal_ros.tubes import OnlineTubeLinker  # noqa: E402

FRAMES = 30
TUBES_TOPIC = '/stal_dds_test/tubes'
DETECTIONS_TOPIC = '/stal_dds_test/detections'
CLASS_NAMES = ('Walking', 'WalkingWithDog', 'Fencing')
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 40_000_000  # a 25 fps camera
QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                 history=HistoryPolicy.KEEP_LAST)


def scripted_detections(num_frames: int, seed: int = 0) -> Iterator[tuple[int, Detections]]:
    """Yield (stamp_ns, detections) of a scripted 640x480 scene, frame by frame.

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


def scripted_messages(num_frames: int) -> Iterator[tuple[ActionTubeArray, Detection2DArray]]:
    """Run the linker over the scripted scene; yield the two messages of every frame."""
    # Every tube reported, one-frame ones included (the flicker gives finished tubes).
    linker = OnlineTubeLinker(TubeConfig(min_publish_length=1), num_classes=len(CLASS_NAMES),
                              id_prefix='dds/')
    for stamp_ns, dets in scripted_detections(num_frames):
        step = linker.update(dets, stamp_ns)
        header = Header(stamp=ns_to_time(stamp_ns), frame_id='dds_camera')
        tubes = list(step.active) + list(step.finished)
        yield (tubes_to_msg(header, tubes, CLASS_NAMES),
               tubes_to_detections_msg(header, step.active, stamp_ns))


def talker(argv: list[str]) -> int:
    """Publish the scripted messages once a listener is connected (run as a script)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--frames', type=int, default=FRAMES)
    parser.add_argument('--rate', type=float, default=100.0)
    parser.add_argument('--wait', type=float, default=20.0)
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node('stal_dds_talker')
    try:
        pub_t = node.create_publisher(ActionTubeArray, TUBES_TOPIC, QOS)
        pub_d = node.create_publisher(Detection2DArray, DETECTIONS_TOPIC, QOS)
        deadline = time.monotonic() + args.wait
        while pub_t.get_subscription_count() < 1 or pub_d.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                sys.stderr.write('no listener appeared\n')
                return 1
            time.sleep(0.05)
        time.sleep(0.3)  # let discovery settle in both directions
        for tubes, dets in scripted_messages(args.frames):
            pub_t.publish(tubes)
            pub_d.publish(dets)
            time.sleep(1.0 / args.rate)
        time.sleep(0.5)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


@pytest.mark.ros
def test_action_tubes_and_detections_arrive_intact_in_another_process(ros_domain):
    expected = list(scripted_messages(FRAMES))
    # The scene exercises what matters: several tubes, a finished one, a gap-filled one.
    assert any(t.state == ActionTube.STATE_FINISHED for m, _ in expected for t in m.tubes)
    assert any(0.0 in t.scores for m, _ in expected for t in m.tubes)

    rclpy.init()
    node = rclpy.create_node('stal_dds_listener')
    tubes: list[ActionTubeArray] = []
    detections: list[Detection2DArray] = []
    node.create_subscription(ActionTubeArray, TUBES_TOPIC, tubes.append, QOS)
    node.create_subscription(Detection2DArray, DETECTIONS_TOPIC, detections.append, QOS)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(
        filter(None, [repo, os.environ.get('PYTHONPATH', '')]))}
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--frames',
                             str(FRAMES)], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        while (len(tubes) < FRAMES or len(detections) < FRAMES) \
                and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    assert proc.returncode == 0, out
    assert len(tubes) == FRAMES, f'received {len(tubes)} of {FRAMES}'
    assert len(detections) == FRAMES
    # Tube ids are unique per process: this process has numbered tubes of earlier tests, the
    # talker starts afresh. Map ids by first appearance; the mapping must stay one-to-one.
    ids_map: dict[str, str] = {}
    for i, ((want_t, want_d), got_t, got_d) in enumerate(zip(expected, tubes, detections)):
        assert len(got_t.tubes) == len(want_t.tubes), f'frame {i}: tube count differs'
        for want, got in zip(want_t.tubes, got_t.tubes):
            mapped = ids_map.setdefault(want.id, got.id)
            assert mapped == got.id, f'frame {i}: tube {want.id} arrived as {got.id}'
            want.id = mapped
        for det in want_d.detections:
            det.id = ids_map[det.id]
        assert got_t == want_t, f'ActionTubeArray of frame {i} differs'
        assert got_d == want_d, f'Detection2DArray of frame {i} differs'
        # The tube id in Detection2D.id names a tube published for the same image.
        assert got_d.header == got_t.header
        ids = {t.id for t in got_t.tubes}
        assert all(d.id in ids for d in got_d.detections)
    assert len(set(ids_map.values())) == len(ids_map)


if __name__ == '__main__':
    sys.exit(talker(sys.argv[1:]))
