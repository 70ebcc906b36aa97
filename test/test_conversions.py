# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Message <-> numpy conversions with literal expected values."""

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')

from std_msgs.msg import Header  # noqa: E402,I100

from stal_ros.ros.conversions import (bbox2d_to_xyxy, detections_from_msg,  # noqa: E402
                                      detections_to_msg, ns_to_time, time_to_ns,
                                      xyxy_to_bbox2d)
from stal_ros.structures import Detections  # noqa: E402


@pytest.mark.ros
def test_stamps_round_trip_exactly():
    t = ns_to_time(1_700_000_000_123_456_789)
    assert (t.sec, t.nanosec) == (1_700_000_000, 123_456_789)
    assert time_to_ns(t) == 1_700_000_000_123_456_789
    with pytest.raises(ValueError, match='stamp_ns = -1: expected >= 0'):
        ns_to_time(-1)


@pytest.mark.ros
def test_box_is_centre_and_size_in_vision_msgs():
    msg = xyxy_to_bbox2d([10.0, 20.0, 50.0, 100.0])
    assert (msg.center.position.x, msg.center.position.y, msg.center.theta) == (30.0, 60.0, 0.0)
    assert (msg.size_x, msg.size_y) == (40.0, 80.0)
    np.testing.assert_array_equal(bbox2d_to_xyxy(msg), [10.0, 20.0, 50.0, 100.0])


@pytest.mark.ros
def test_detections_round_trip_through_detection2d_array():
    det = Detections(np.array([[1, 2, 3, 4], [5, 6, 70, 80]], np.float32),
                     np.array([0.5, 0.25], np.float32), np.array([3, 0]))
    header = Header(frame_id='cam0')
    msg = detections_to_msg(header, det)
    assert [d.results[0].hypothesis.class_id for d in msg.detections] == ['3', '0']
    assert all(d.id == '' and d.header.frame_id == 'cam0' for d in msg.detections)
    back, ids = detections_from_msg(msg)
    np.testing.assert_array_equal(back.boxes, det.boxes)
    np.testing.assert_array_equal(back.scores, det.scores)
    np.testing.assert_array_equal(back.labels, det.labels)
    assert ids == ['', '']
    empty, ids = detections_from_msg(detections_to_msg(header, Detections.empty()))
    assert len(empty) == 0 and ids == []


@pytest.mark.ros
def test_detection_with_a_class_name_instead_of_an_index_is_named():
    msg = detections_to_msg(Header(), Detections(np.array([[0, 0, 1, 1]], np.float32),
                                                 np.array([0.9]), np.array([2])))
    msg.detections[0].results[0].hypothesis.class_id = 'Biking'
    pattern = (r'detections\[0\].results.hypothesis.class_id = '
               + repr('Biking') + ': expected a class index')
    with pytest.raises(ValueError, match=pattern):
        detections_from_msg(msg)
