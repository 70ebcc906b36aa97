# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Messages cross a real DDS link between two processes intact (rclpy over Fast DDS)."""

import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')

from stal_ros.msg import ActionTube  # noqa: E402  (after the ROS check)
from stal_ros.ros import demo  # noqa: E402

FRAMES = 30


@pytest.mark.ros
def test_action_tubes_and_detections_arrive_intact_in_another_process(ros_domain):
    expected = list(demo.demo_messages(FRAMES))
    # The scene exercises what matters: several tubes, a finished one, a gap-filled one.
    assert any(t.state == ActionTube.STATE_FINISHED for m, _ in expected for t in m.tubes)
    assert any(0.0 in t.scores for m, _ in expected for t in m.tubes)

    rclpy.init()
    node = demo.Listener(quiet=True)
    talker = subprocess.Popen([sys.executable, '-m', 'stal_ros.ros.demo', 'talker', '--frames',
                               str(FRAMES), '--rate', '100'],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        while (len(node.tubes) < FRAMES or len(node.detections) < FRAMES) \
                and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        out, _ = talker.communicate(timeout=30)
    finally:
        if talker.poll() is None:
            talker.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    assert talker.returncode == 0, out
    assert len(node.tubes) == FRAMES, f'received {len(node.tubes)} of {FRAMES}'
    assert len(node.detections) == FRAMES
    # Tube ids are unique per process: this process has numbered tubes of earlier tests, the
    # talker starts afresh. Map ids by first appearance; the mapping must stay one-to-one.
    ids_map: dict[str, str] = {}
    for i, ((want_t, want_d), got_t, got_d) in enumerate(
            zip(expected, node.tubes, node.detections)):
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
