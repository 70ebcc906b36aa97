# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Image bytes -> RGB: every encoding against OpenCV's colour conversions, and bad inputs."""

import array

import cv2
import numpy as np
import pytest

from stal_ros.images import decode_compressed, decode_image

RNG = np.random.default_rng(7)
H, W = 6, 10


def _padded(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    """(H, W, C) uint8 -> (data, step) with ``pad`` junk bytes after every row."""
    rows = pixels.reshape(pixels.shape[0], -1)
    junk = RNG.integers(0, 256, (rows.shape[0], pad), dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    return data.tobytes(), data.shape[1]


@pytest.fixture
def rgb() -> np.ndarray:
    return RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding,to_source', [
    ('rgb8', lambda x: x),
    ('bgr8', lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2BGR)),
    ('rgba8', lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2RGBA)),
    ('bgra8', lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2BGRA)),
])
def test_colour_encodings_give_the_rgb_frame_back(rgb, encoding, to_source, pad):
    data, step = _padded(to_source(rgb), pad)
    out = decode_image(data, H, W, encoding, step)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_8bit_encodings_are_views_of_the_message_buffer(rgb):
    data, step = _padded(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA), 3)
    buf = array.array('B', data)   # what rclpy hands over for uint8[] fields
    out = decode_image(buf, H, W, 'bgra8', step)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))


@pytest.mark.parametrize('pad', [0, 4])
def test_mono8_matches_opencv_gray_to_rgb(pad):
    gray = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    data, step = _padded(gray[:, :, None], pad)
    out = decode_image(data, H, W, 'mono8', step)
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))


@pytest.mark.parametrize('pad', [0, 6])
@pytest.mark.parametrize('encodings,code', [
    (('uyvy', 'yuv422'), cv2.COLOR_YUV2RGB_UYVY),
    (('yuyv', 'yuv422_yuy2'), cv2.COLOR_YUV2RGB_YUY2),
])
def test_yuv422_equals_opencv_bit_for_bit(encodings, code, pad):
    yuv = RNG.integers(0, 256, (H, W, 2), dtype=np.uint8)
    want = cv2.cvtColor(yuv, code)
    data, step = _padded(yuv, pad)
    for encoding in encodings:
        np.testing.assert_array_equal(decode_image(data, H, W, encoding, step), want)


@pytest.mark.parametrize('big', [False, True])
@pytest.mark.parametrize('encoding,channels,to_rgb', [
    ('mono16', 1, lambda x: cv2.cvtColor(x, cv2.COLOR_GRAY2RGB)),
    ('rgb16', 3, lambda x: x),
    ('bgr16', 3, lambda x: cv2.cvtColor(x, cv2.COLOR_BGR2RGB)),
    ('bgra16', 4, lambda x: cv2.cvtColor(x, cv2.COLOR_BGRA2RGB)),
])
def test_16bit_encodings_respect_endianness(encoding, channels, to_rgb, big):
    samples = RNG.integers(0, 65536, (H, W, channels), dtype=np.uint16)
    raw = samples.astype('>u2' if big else '<u2').reshape(H, -1).view(np.uint8)
    data, step = _padded(raw.reshape(H, W * channels, 2), 2)
    out = decode_image(data, H, W, encoding, step, is_bigendian=big)
    high = (samples >> 8).astype(np.uint8)
    want = to_rgb(high[:, :, 0] if channels == 1 else high)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_compressed_matches_opencv_decode(rgb, ext):
    big = cv2.resize(rgb, (40, 24), interpolation=cv2.INTER_NEAREST)
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    assert ok
    out = decode_compressed(encoded.tobytes(), ext[1:])
    want = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, want)
    if ext == '.png':    # lossless
        np.testing.assert_array_equal(out, big)


@pytest.mark.parametrize('args,match', [
    ((b'\0' * 180, H, W, 'bayer_rggb8', 30), "encoding 'bayer_rggb8': expected one of"),
    ((b'', 0, W, 'rgb8', 30), 'size 10x0: expected a non-empty image'),
    ((b'\0' * 170, H, W, 'rgb8', 30), 'expected step x height = 30 x 6 = 180 bytes, got 170'),
    ((b'\0' * 174, H, W, 'rgb8', 29), r'step 29: expected >= 30 \(width 10 x 3 bytes'),
    ((b'\0' * 45, 3, 5, 'uyvy', 15), 'width 5: expected an even width'),
    ((b'\0' * 126, H, W, 'mono16', 21), 'step 21: expected an even number of bytes'),
])
def test_bad_raw_images_raise_naming_the_problem(args, match):
    with pytest.raises(ValueError, match=match):
        decode_image(*args)


def test_corrupt_and_empty_compressed_images_raise():
    ok, encoded = cv2.imencode('.jpg', np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match='cannot be decoded'):
        decode_compressed(b'\xff\xd8 definitely not a jpeg', 'jpeg')
    with pytest.raises(ValueError, match='expected data, got 0 bytes'):
        decode_compressed(b'', 'jpeg')
    assert decode_compressed(encoded.tobytes()).shape == (16, 16, 3)
