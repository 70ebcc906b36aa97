# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""FrameBuffer: K-frame clips, causal and centred targets, padded ends, bad input."""

import numpy as np
import pytest

from stal_ros.config import FramesConfig
from stal_ros.frames import FrameBuffer, latency_frames
from stal_ros.structures import Clip


def frame(value, h=4, w=6):
    return np.full((h, w, 3), value, np.uint8)


def test_causal_clip_targets_newest_frame():
    buf = FrameBuffer(FramesConfig(num_frames=3, mode='causal', pad=False))
    assert buf.latency_frames == 0
    assert buf.push(frame(0), 100) is None
    assert buf.push(frame(1), 200) is None
    clip = buf.push(frame(2), 300)
    assert isinstance(clip, Clip)
    assert clip.frames.shape == (3, 4, 6, 3) and clip.frames.dtype == np.uint8
    assert clip.frames[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert clip.stamps_ns.dtype == np.int64 and clip.stamps_ns.tolist() == [100, 200, 300]
    assert clip.target_index == 2 and clip.target_stamp_ns == 300
    assert clip.target_frame[0, 0, 0] == 2
    clip = buf.push(frame(3), 400)          # the ring wraps: oldest first, every push
    assert clip.frames[:, 0, 0, 0].tolist() == [1, 2, 3]
    assert clip.stamps_ns.tolist() == [200, 300, 400] and clip.target_stamp_ns == 400


def test_centred_clip_targets_middle_frame_one_frame_late():
    buf = FrameBuffer(FramesConfig(num_frames=3, mode='centred', pad=False))
    assert buf.latency_frames == 1
    buf.push(frame(0), 10)
    buf.push(frame(1), 20)
    clip = buf.push(frame(2), 30)
    assert clip.target_index == 1 and clip.target_stamp_ns == 20
    assert clip.target_frame[0, 0, 0] == 1


@pytest.mark.parametrize('k, latency, target', [(2, 0, 1), (4, 1, 2), (5, 2, 2)])
def test_centred_latency_for_other_k(k, latency, target):
    config = FramesConfig(num_frames=k, mode='centred', pad=False)
    buf = FrameBuffer(config)
    assert buf.latency_frames == latency == latency_frames(config)
    assert latency_frames(FramesConfig(num_frames=k, mode='causal')) == 0
    clips = [buf.push(frame(i), i + 1) for i in range(k)]
    assert clips[:-1] == [None] * (k - 1)
    assert clips[-1].target_index == target == k - 1 - latency
    assert clips[-1].target_stamp_ns == target + 1


def test_clip_owns_its_frames_and_buffer_copies_input():
    buf = FrameBuffer(FramesConfig(num_frames=2))
    img = frame(7)
    buf.push(img, 1)
    img[:] = 99                              # the caller reuses its array
    clip = buf.push(frame(8), 2)
    assert clip.frames[:, 0, 0, 0].tolist() == [7, 8]
    buf.push(frame(9), 3)                    # overwrites the ring slot of frame 7
    assert clip.frames[:, 0, 0, 0].tolist() == [7, 8]


def test_resolution_change_restarts_buffer():
    buf = FrameBuffer(FramesConfig(num_frames=3, pad=False))
    for i in range(3):
        buf.push(frame(i), i + 1)
    assert buf.resolution == (4, 6)
    assert buf.push(frame(10, h=8, w=5), 10) is None
    assert len(buf) == 1 and buf.resolution == (8, 5)
    assert buf.push(frame(11, h=8, w=5), 11) is None
    clip = buf.push(frame(12, h=8, w=5), 12)
    assert clip.frames.shape == (3, 8, 5, 3)
    assert clip.frames[:, 0, 0, 0].tolist() == [10, 11, 12]


@pytest.mark.parametrize('stamp', [300, 299])
def test_stamp_not_later_raises_and_keeps_buffer(stamp):
    buf = FrameBuffer(FramesConfig(num_frames=3, pad=False))
    buf.push(frame(0), 100)
    buf.push(frame(1), 300)
    with pytest.raises(ValueError, match=rf'later than the previous frame \(300 ns\), got '
                                         rf'{stamp} ns'):
        buf.push(frame(5), stamp)
    assert len(buf) == 2 and buf.last_stamp_ns == 300
    clip = buf.push(frame(2), 400)
    assert clip.frames[:, 0, 0, 0].tolist() == [0, 1, 2]
    buf.reset()
    assert len(buf) == 0 and buf.last_stamp_ns is None
    assert buf.push(frame(3), 5) is None     # after a reset, time may start again


def targets(clips):
    """(target frame value, frame values of the clip) of each clip."""
    return [(int(c.target_frame[0, 0, 0]), c.frames[:, 0, 0, 0].tolist()) for c in clips]


def test_padded_causal_stream_localises_every_frame_from_the_first():
    buf = FrameBuffer(FramesConfig(num_frames=3, mode='causal'))       # pad is the default
    clips = [buf.push(frame(i), 10 * (i + 1)) for i in range(4)]
    assert targets(clips) == [(0, [0, 0, 0]), (1, [0, 0, 1]), (2, [0, 1, 2]), (3, [1, 2, 3])]
    assert clips[0].stamps_ns.tolist() == [10, 10, 10]      # a repeated frame keeps its stamp
    assert clips[1].target_stamp_ns == 20
    assert buf.flush() == []                  # causal clips are never late


@pytest.mark.parametrize('num_pushed', [1, 2, 3, 7])
def test_padded_centred_stream_localises_every_frame_once_in_order(num_pushed):
    buf = FrameBuffer(FramesConfig(num_frames=5, mode='centred'))
    pushed = [buf.push(frame(i), 10 * (i + 1)) for i in range(num_pushed)]
    live = [c for c in pushed if c is not None]
    # Frame 0 is localised once frame 2 (K // 2 later) has arrived, then one clip per push.
    assert [c is None for c in pushed] == [i < 2 for i in range(num_pushed)]
    flushed = buf.flush()
    got = targets(live + flushed)
    assert [t for t, _ in got] == list(range(num_pushed))
    last = num_pushed - 1
    for t, values in got:                     # frames t - 2 .. t + 2 clipped to the stream
        assert values == [min(max(i, 0), last) for i in range(t - 2, t + 3)]
    stamps = [c.target_stamp_ns for c in live + flushed]
    assert stamps == [10 * (t + 1) for t in range(num_pushed)]
    assert len(buf) == 0 and buf.last_stamp_ns is None     # flush ends the stream
    assert buf.flush() == []
    assert buf.push(frame(50), 5) is None                  # a new stream, time may restart


def test_unpadded_stream_never_localises_its_ends():
    buf = FrameBuffer(FramesConfig(num_frames=5, mode='centred', pad=False))
    clips = [buf.push(frame(i), i + 1) for i in range(7)]
    assert [t for t, _ in targets([c for c in clips if c is not None])] == [2, 3, 4]
    assert buf.flush() == [] and len(buf) == 0


def test_padded_resolution_change_starts_a_new_padded_stream():
    buf = FrameBuffer(FramesConfig(num_frames=3, mode='centred'))
    assert buf.push(frame(0), 1) is None
    assert targets([buf.push(frame(1), 2)]) == [(0, [0, 0, 1])]
    assert buf.push(frame(10, h=8, w=5), 3) is None      # frame 1 of the old size is lost
    clip = buf.push(frame(11, h=8, w=5), 4)
    assert targets([clip]) == [(10, [10, 10, 11])] and clip.frames.shape == (3, 8, 5, 3)


def test_numpy_integer_stamps_accepted():
    buf = FrameBuffer(FramesConfig(num_frames=2))
    buf.push(frame(0), np.int64(1))
    clip = buf.push(frame(1), np.uint32(2))
    assert clip.stamps_ns.tolist() == [1, 2]


@pytest.mark.parametrize('bad, exc, match', [
    (np.zeros((4, 6, 3), np.float32), TypeError, 'expected dtype uint8, got float32'),
    (np.zeros((4, 6), np.uint8), ValueError, r'expected shape \(H, W, 3\), got \(4, 6\)'),
    (np.zeros((4, 6, 4), np.uint8), ValueError, r'expected shape \(H, W, 3\), got \(4, 6, 4\)'),
    (np.zeros((0, 6, 3), np.uint8), ValueError, r'non-empty image, got shape \(0, 6, 3\)'),
    ([[1, 2, 3]], TypeError, 'expected a numpy.ndarray'),
])
def test_bad_frames_rejected_with_expected_and_actual(bad, exc, match):
    buf = FrameBuffer(FramesConfig())
    buf.push(frame(0), 1)
    with pytest.raises(exc, match=match):
        buf.push(bad, 2)
    assert len(buf) == 1


@pytest.mark.parametrize('stamp', [1.5, True, '3'])
def test_bad_stamp_type_rejected(stamp):
    with pytest.raises(TypeError, match='expected an int'):
        FrameBuffer(FramesConfig()).push(frame(0), stamp)


def test_config_type_checked():
    with pytest.raises(TypeError, match='expected a FramesConfig'):
        FrameBuffer({'num_frames': 3})
