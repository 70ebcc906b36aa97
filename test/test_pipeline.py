# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The ROS-free pipeline with a real (tiny, randomly initialised) detector.

Batching over cameras, latest-frame dropping, resets on time going back, stamps and metas
carried through.
"""

import dataclasses
import threading

import numpy as np
import pytest

from stal_ros.config import (BackboneConfig, DetectorConfig, FlowConfig, FramesConfig,
                             PostprocessConfig, TubeConfig)
from stal_ros.net.detector import build_detector
from stal_ros.pipeline import Pipeline, tube_tail

MS = 1_000_000


def tiny_config(**post) -> DetectorConfig:
    """Return a lite backbone at width 0.25, 64x64 input, DIS flow, 3 classes, on the CPU."""
    return DetectorConfig(backbone=BackboneConfig(kind='lite', width=0.25),
                          flow=FlowConfig(kind='dis', input_size=(64, 64)), input_size=64,
                          class_names=('wave', 'walk', 'jump'), device='cpu',
                          postprocess=PostprocessConfig(**post))


class CountingDetector:
    """The real detector, with every ``detect`` call's batch size recorded."""

    def __init__(self, detector) -> None:
        self.inner = detector
        self.config = detector.config
        self.class_names = detector.class_names
        self.postprocess = detector.postprocess
        self.batches: list[list[tuple]] = []

    def detect(self, clips):
        self.batches.append([clip.frames.shape for clip in clips])
        return self.inner.detect(clips)


@pytest.fixture(scope='module')
def detector():
    return build_detector(tiny_config(score_threshold=0.2, max_detections=5))


def frames(n: int, h: int = 48, w: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_two_cameras_of_different_sizes_run_in_one_detect_call(detector):
    counting = CountingDetector(detector)
    # Tubes shown from their first frame.
    pipe = Pipeline(counting, TubeConfig(min_publish_length=1), ['front', 'rear'])
    front, rear = frames(3, 48, 64, 1), frames(3, 40, 80, 2)
    for i in range(3):
        pipe.push('front', front[i], 1000 + i * 40 * MS, meta=f'front-{i}')
        pipe.push('rear', rear[i], 5000 + i * 40 * MS, meta=f'rear-{i}')
    results = pipe.step()
    assert counting.batches == [[(3, 48, 64, 3), (3, 40, 80, 3)]]
    assert [r.camera for r in results] == ['front', 'rear']
    assert [r.batch_size for r in results] == [2, 2]
    # Results carry the source stamp and meta of the localised (newest, causal) frame.
    assert [r.stamp_ns for r in results] == [1000 + 80 * MS, 5000 + 80 * MS]
    assert [r.meta for r in results] == ['front-2', 'rear-2']
    np.testing.assert_array_equal(results[0].frame, front[2])
    # Detections are in each camera's pixels.
    for r, (h, w) in zip(results, [(48, 64), (40, 80)]):
        assert len(r.detections) > 0
        assert r.detections.boxes[:, [0, 2]].max() <= w
        assert r.detections.boxes[:, [1, 3]].max() <= h
    # Tube ids are prefixed by the camera: unique across cameras.
    ids = {r.camera: {t.tube_id for t in r.tubes.active} for r in results}
    assert ids['front'] and all(i.startswith('front/') for i in ids['front'])
    assert ids['rear'] and all(i.startswith('rear/') for i in ids['rear'])
    assert pipe.step() == []
    assert len(counting.batches) == 1


def test_streaming_computes_each_frame_pairs_flow_once_with_the_same_results():
    # K = 5: a clip has 4 pairs, 3 of them in the previous clip too.  Two cameras, so the cache
    # holds both streams; the results equal those of the same detector computing every pair.
    # Padded start (frames.pad): frame 0 is localised once frame 2 arrived.
    config = tiny_config(score_threshold=0.2, max_detections=5)
    detector = build_detector(
        dataclasses.replace(config, frames=FramesConfig(num_frames=5, mode='centred')))
    dis = detector.model.motion.flow_subnet.estimator
    videos = {'front': frames(9, 48, 64, 3), 'rear': frames(9, 40, 80, 4)}
    runs, infos = [], []
    for cache_pairs in (64, 0):
        dis.cache_pairs = cache_pairs
        dis.cache_clear()
        pipe = Pipeline(detector, TubeConfig(min_publish_length=1), list(videos))
        results = []
        for i in range(9):
            for name, video in videos.items():
                pipe.push(name, video[i], 1000 + i * 40 * MS)
            results += pipe.step()
        runs.append(results)
        infos.append(dis.cache_info()[:2])
    assert len(runs[0]) == len(runs[1]) == 2 * 7
    for got, want in zip(*runs):
        assert got.stamp_ns == want.stamp_ns and len(got.detections) > 0
        np.testing.assert_array_equal(got.detections.boxes, want.detections.boxes)
        np.testing.assert_array_equal(got.detections.scores, want.detections.scores)
    # Padded start: 7 clips per camera (targets 0..6, frames 4..8 in the last), their pairs
    # the 8 of the video plus frame 0 paired with itself, so 9 pairs per camera are computed
    # once; 7 clips x 4 pairs - 9 = 19 are found in the cache.
    assert infos == [(2 * 19, 2 * 9), (0, 2 * 7 * 4)]


@pytest.mark.parametrize('pad, localised', [(True, list(range(7))), (False, [2, 3, 4])])
def test_evaluation_localises_every_frame_of_a_video_with_padded_clips(pad, localised):
    from types import SimpleNamespace
    from stal_ros.evaluate import run_video
    config = tiny_config(score_threshold=0.0, max_detections=3)      # boxes in every frame
    detector = build_detector(dataclasses.replace(
        config, frames=FramesConfig(num_frames=5, mode='centred', pad=pad)))
    video = SimpleNamespace(name='v', frames=np.stack(frames(7)))
    detections, _ = run_video(detector, video, TubeConfig())
    assert sorted(set(detections.frames.tolist())) == localised


def test_stream_benchmark_prints_both_runs_and_checks_identity(capsys):
    # The shipped model (K = 5, DIS), one short video, two cameras per tick.
    from stal_ros.tools.bench_stream import main
    assert main(['--videos', '1', '--size', '64', '--cameras', '2']) == 0
    out = capsys.readouterr().out
    assert 'K=5 centred, dis flow, 1 videos x 40 frames at 64x64, 2 camera(s)' in out
    assert 'flow cache on  (64 pairs), per tick: median' in out
    assert 'flow cache off (baseline), per tick: median' in out
    assert 'ratio baseline / cache:' in out and 'detections identical: True' in out


def test_only_the_newest_clip_is_kept_and_replaced_ones_count_as_dropped(detector):
    counting = CountingDetector(detector)
    pipe = Pipeline(counting, TubeConfig(), ['cam'])
    for i, frame in enumerate(frames(7)):
        pipe.push('cam', frame, (i + 1) * MS, meta=i)
    results = pipe.step()
    # Each of the 7 frames completed a (padded, causal) clip; the first six were replaced
    # before the model ran.
    assert len(results) == 1 and len(counting.batches) == 1
    assert results[0].meta == 6 and results[0].stamp_ns == 7 * MS
    assert results[0].stats.dropped == 6
    assert results[0].stats.received == 7 and results[0].stats.processed == 1
    # The dropped clips never reached the linker: this is its first frame.
    assert results[0].tubes.frame_index == 0


def test_time_going_back_resets_buffer_and_tubes_with_an_event(detector):
    pipe = Pipeline(detector, TubeConfig(), ['cam'])
    clip = frames(6)
    for i in range(4):
        assert pipe.push('cam', clip[i], (10 + i) * MS) is None
        pipe.step()
    assert pipe.stats('cam').processed == 4     # padded clips: from the first frame on
    event = pipe.push('cam', clip[4], 2 * MS)
    assert event is not None and 'time went back' in event and 'cam' in event
    assert pipe.stats('cam').resets == 1
    # The buffer restarted: a new stream, whose first frame fills the whole clip.
    results = pipe.step()
    assert [r.stamp_ns for r in results] == [2 * MS]
    assert results[0].tubes.frame_index == 0      # a fresh linker
    np.testing.assert_array_equal(results[0].frame, clip[4])
    assert pipe.stats('cam').processed == 5


def test_repeated_stamp_is_ignored_and_size_change_restarts_the_clip(detector):
    unpadded = dataclasses.replace(detector.config.frames, pad=False)   # K real frames
    pipe = Pipeline(detector, TubeConfig(), ['cam'], unpadded)
    small, big = frames(3, 48, 64), frames(3, 56, 72)
    for i in range(3):
        pipe.push('cam', small[i], (i + 1) * MS)
    assert 'repeats' in pipe.push('cam', small[2], 3 * MS)
    assert pipe.stats('cam').duplicates == 1
    pipe.step()
    assert 'frame size changed' in pipe.push('cam', big[0], 4 * MS)
    pipe.push('cam', big[1], 5 * MS)
    assert pipe.step() == []
    pipe.push('cam', big[2], 6 * MS)
    results = pipe.step()
    assert results[0].frame.shape == (56, 72, 3) and pipe.stats('cam').restarts == 1


def test_worker_thread_waits_for_clips(detector):
    pipe = Pipeline(detector, TubeConfig(), ['cam'])
    assert pipe.wait(0.01) is False
    got = []

    def worker():
        if pipe.wait(5.0):
            got.extend(pipe.step())

    thread = threading.Thread(target=worker)
    thread.start()
    for i, frame in enumerate(frames(3)):
        pipe.push('cam', frame, (i + 1) * MS)
    thread.join(10)
    assert [r.stamp_ns for r in got] == [3 * MS]


def test_thresholds_change_at_runtime_and_bad_changes_are_refused(detector):
    pipe = Pipeline(detector, TubeConfig(), ['cam'])
    pipe.update_thresholds(PostprocessConfig(score_threshold=0.99),
                           TubeConfig(iou_threshold=0.5))
    for i, frame in enumerate(frames(3)):
        pipe.push('cam', frame, (i + 1) * MS)
    try:
        results = pipe.step()
        assert len(results[0].detections) == 0
        assert pipe._cameras['cam'].linker.config.iou_threshold == 0.5
    finally:
        pipe.update_thresholds(PostprocessConfig(score_threshold=0.2, max_detections=5))
        pipe.step()
    with pytest.raises(ValueError, match='tubes.top_k: cannot change while running'):
        pipe.update_thresholds(tubes=TubeConfig(top_k=3))


def test_bad_inputs_raise():
    detector = build_detector(tiny_config())
    with pytest.raises(ValueError, match='unique names'):
        Pipeline(detector, TubeConfig(), ['a', 'a'])
    pipe = Pipeline(detector, TubeConfig(), ['a'])
    with pytest.raises(ValueError, match="camera 'b': expected one of"):
        pipe.push('b', frames(1)[0], 1)
    with pytest.raises(ValueError, match='expected shape'):
        pipe.push('a', np.zeros((4, 4), np.uint8), 1)


def test_tube_tail_keeps_the_newest_history(detector):
    pipe = Pipeline(detector, TubeConfig(), ['cam'])
    for i, frame in enumerate(frames(8)):
        pipe.push('cam', frame, (i + 1) * MS)
        results = pipe.step()
    tube = max(results[0].tubes.active, key=lambda t: len(t.stamps_ns))
    assert len(tube.stamps_ns) >= 3
    tail = tube_tail(tube, 2)
    np.testing.assert_array_equal(tail.stamps_ns, tube.stamps_ns[-2:])
    np.testing.assert_array_equal(tail.boxes, tube.boxes[-2:])
    assert tail.tube_id == tube.tube_id and tail.length == tube.length
