# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Our image conversion equals ROS 2's cv_bridge where cv_bridge is importable (a robot).

cv_bridge for ROS 2 is not installable from pip (the PyPI package of that name is an
unofficial ROS 1 port), so on a machine set up by scripts/setup_env.sh this test is skipped
with that reason; on a robot with ros-<distro>-cv-bridge it runs.
"""

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')
cv_bridge = pytest.importorskip(
    'cv_bridge', reason="needs ROS 2's cv_bridge (not installable from pip; present on a "
    'robot with ros-<distro>-cv-bridge)')

from stal_ros.ros.images import image_to_rgb  # noqa: E402  (after the checks)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'yuv422',
                                      'yuv422_yuy2'])
def test_image_to_rgb_equals_cv_bridge(encoding):
    bridge = cv_bridge.CvBridge()
    rng = np.random.default_rng(0)
    channels = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'yuv422': 2,
                'yuv422_yuy2': 2}[encoding]
    raw = rng.integers(0, 256, (6, 8, channels), dtype=np.uint8).squeeze()
    msg = bridge.cv2_to_imgmsg(raw, encoding=encoding)
    ours = image_to_rgb(msg)
    theirs = bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
    np.testing.assert_array_equal(ours, theirs)
