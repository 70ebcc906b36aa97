# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Camera image bytes -> (H, W, 3) uint8 RGB, in numpy (ROS-free; the message adapter is ros/).

Why not cv_bridge: ROS 2's cv_bridge is not installable from pip (the package of that name on
the index is an unofficial ROS 1 port) and it has broken on NumPy 2.  The conversions here read
``sensor_msgs/Image`` fields (data, height, width, encoding, step, is_bigendian) directly:

- 8-bit colour and mono (rgb8, bgr8, rgba8, bgra8, mono8) come back as *views* of the message
  buffer (channel order and alpha are strides, ``step`` row padding is a stride), so nothing is
  copied until the frame buffer copies the frame into its ring;
- 16-bit encodings (mono16, rgb16, bgr16, rgba16, bgra16) honour ``is_bigendian`` and keep the
  high byte (one copy);
- YUV 4:2:2 (``uyvy``/``yuv422``: U Y0 V Y1; ``yuyv``/``yuv422_yuy2``: Y0 U Y1 V) is converted
  with OpenCV's own integer BT.601 video-range arithmetic (``COLOR_YUV2RGB_UYVY``/``_YUY2``,
  also what cv_bridge calls), so the result equals OpenCV's bit for bit.

``decode_compressed`` decodes ``sensor_msgs/CompressedImage`` JPEG/PNG with ``cv2.imdecode``.
Every malformed input raises ``ValueError`` naming the problem, expected and actual.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np


class Layout(NamedTuple):
    """Memory layout of one encoding: bytes per pixel, channel order, sample size."""

    pixel_bytes: int
    channels: tuple[int, ...] | None   # indices of R, G, B (None: mono); None for YUV
    sample_bytes: int                  # 1 or 2
    yuv: str | None = None             # 'uyvy' or 'yuyv'


ENCODINGS: dict[str, Layout] = {
    'rgb8': Layout(3, (0, 1, 2), 1),
    'bgr8': Layout(3, (2, 1, 0), 1),
    'rgba8': Layout(4, (0, 1, 2), 1),
    'bgra8': Layout(4, (2, 1, 0), 1),
    'mono8': Layout(1, None, 1),
    '8uc1': Layout(1, None, 1),
    '8uc3': Layout(3, (2, 1, 0), 1),   # OpenCV's default order
    'rgb16': Layout(6, (0, 1, 2), 2),
    'bgr16': Layout(6, (2, 1, 0), 2),
    'rgba16': Layout(8, (0, 1, 2), 2),
    'bgra16': Layout(8, (2, 1, 0), 2),
    'mono16': Layout(2, None, 2),
    'uyvy': Layout(2, None, 1, 'uyvy'),
    'yuv422': Layout(2, None, 1, 'uyvy'),         # sensor_msgs image_encodings: UYVY
    'yuyv': Layout(2, None, 1, 'yuyv'),
    'yuv422_yuy2': Layout(2, None, 1, 'yuyv'),
}

# OpenCV's fixed-point BT.601 video-range YUV -> RGB (modules/imgproc color_yuv.simd.hpp).
_SHIFT = 20
_CY, _CUB, _CUG, _CVG, _CVR = 1220542, 2116026, -409993, -852492, 1673527


def _buffer(data: object) -> np.ndarray:
    """View any bytes-like object (bytes, array.array('B'), memoryview, ndarray) as uint8."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        raise ValueError(f'data: expected a bytes-like buffer, got {type(data).__name__}') \
            from None


def decode_image(data: object, height: int, width: int, encoding: str, step: int,
                 is_bigendian: bool = False) -> np.ndarray:
    """Convert raw image bytes to an (H, W, 3) uint8 RGB array, a view of ``data`` if possible.

    Args:
        data: step * H bytes, row after row (bytes, array.array, memoryview or uint8 array).
        height, width: H and W in pixels (> 0; even W for the YUV 4:2:2 encodings).
        encoding: one of ``ENCODINGS`` (case-insensitive).
        step: bytes per row, >= W * bytes per pixel (larger means padded rows).
        is_bigendian: byte order of 16-bit samples.

    Returns:
        (H, W, 3) uint8 RGB; read-only when it is a view of immutable ``data``.

    Raises:
        ValueError: unknown encoding, zero or odd size, wrong step, wrong data length.
    """
    layout = ENCODINGS.get(str(encoding).lower())
    if layout is None:
        raise ValueError(f'encoding {encoding!r}: expected one of {sorted(ENCODINGS)}')
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ValueError(f'size {width}x{height}: expected a non-empty image')
    row_bytes = width * layout.pixel_bytes
    if step < row_bytes:
        raise ValueError(f'step {step}: expected >= {row_bytes} (width {width} x '
                         f'{layout.pixel_bytes} bytes per {encoding} pixel)')
    if layout.sample_bytes == 2 and step % 2:
        raise ValueError(f'step {step}: expected an even number of bytes for 16-bit {encoding}')
    if layout.yuv and width % 2:
        raise ValueError(f'width {width}: expected an even width for YUV 4:2:2 ({encoding})')
    buf = _buffer(data)
    if buf.size != step * height:
        raise ValueError(f'data: expected step x height = {step} x {height} = '
                         f'{step * height} bytes, got {buf.size}')
    rows = buf.reshape(height, step)[:, :row_bytes]    # (H, W * bytes), a view
    if layout.yuv:
        return _yuv422_to_rgb(rows.reshape(height, width // 2, 4), layout.yuv)
    if layout.sample_bytes == 2:
        order = '>' if is_bigendian else '<'
        samples = buf.view(order + 'u2').reshape(height, step // 2)[:, :row_bytes // 2]
        rows = (samples >> 8).astype(np.uint8)          # (H, W * C), the one copy
    pixels = rows.reshape(height, width, -1)            # (H, W, C), a view
    if layout.channels is None:
        return np.broadcast_to(pixels[:, :, :1], (height, width, 3))
    if layout.channels == (0, 1, 2):
        return pixels[:, :, :3]
    return pixels[:, :, 2::-1]


def _yuv422_to_rgb(quads: np.ndarray, order: str) -> np.ndarray:
    """(H, W/2, 4) uint8 UYVY or YUYV macro-pixels -> (H, W, 3) uint8 RGB (OpenCV's math)."""
    if order == 'uyvy':
        u, y0, v, y1 = (quads[:, :, i] for i in range(4))
    else:
        y0, u, y1, v = (quads[:, :, i] for i in range(4))
    u = u.astype(np.int32) - 128
    v = v.astype(np.int32) - 128
    half = 1 << (_SHIFT - 1)
    chroma = (half + _CVR * v, half + _CVG * v + _CUG * u, half + _CUB * u)  # (H, W/2) each
    height, pairs = u.shape
    out = np.empty((height, pairs, 2, 3), np.uint8)     # (H, W/2, 2 pixels, RGB)
    for i, y in enumerate((y0, y1)):
        luma = np.maximum(y.astype(np.int32) - 16, 0) * _CY
        for c in range(3):
            out[:, :, i, c] = np.clip((luma + chroma[c]) >> _SHIFT, 0, 255)
    return out.reshape(height, pairs * 2, 3)


def decode_compressed(data: object, fmt: str = '') -> np.ndarray:
    """Decode a JPEG or PNG (``sensor_msgs/CompressedImage``) to (H, W, 3) uint8 RGB.

    Args:
        data: the compressed bytes.
        fmt: the message's ``format`` (only used in error messages; the bytes decide).

    Raises:
        ValueError: empty or undecodable data.
    """
    buf = _buffer(data)
    if buf.size == 0:
        raise ValueError(f'compressed image ({fmt or "no format"}): expected data, got 0 bytes')
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ValueError(f'compressed image ({fmt or "no format"}, {buf.size} bytes): cannot '
                         'be decoded (expected a valid JPEG or PNG; corrupt or truncated?)')
    return bgr[:, :, ::-1]
