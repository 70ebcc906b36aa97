# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``sensor_msgs/Image`` and ``CompressedImage`` <-> (H, W, 3) uint8 RGB (no cv_bridge).

The byte-level decoding is ROS-free (``stal_ros.images``); this adapter only reads the message
fields.  ``msg.data`` (an ``array.array`` in rclpy) is viewed, not copied.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from stal_ros.images import decode_compressed, decode_image


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image (a view of ``msg.data`` for 8-bit RGB/BGR/mono)."""
    return decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step,
                        bool(msg.is_bigendian))


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a JPEG/PNG CompressedImage."""
    return decode_compressed(msg.data, msg.format)


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """Return an rgb8 Image of an (H, W, 3) uint8 array with the given header."""
    height, width = rgb.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding='rgb8', is_bigendian=0,
                step=width * 3)
    msg.data = array.array('B', np.ascontiguousarray(rgb, np.uint8).tobytes())
    return msg
