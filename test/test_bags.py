# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Bag I/O, ground truth in bags and offline evaluation from bags (stal_ros.bags)."""

import json
import pathlib

import numpy as np
import pytest

from stal_ros import messages
from stal_ros.bags.cli import main as bag_main, write_video_bag
from stal_ros.bags.io import BagError, BagReader, BagWriter, image_message
from stal_ros.bags.offline import outputs_of, run_bag
from stal_ros.bags.score import (FrameIndex, ground_truth_annotations, ground_truth_messages,
                                 GT_TOPIC, score, TubeCollector, video_outputs)
from stal_ros.bags.types import rosbags_types, typestore
from stal_ros.config import OutputConfig, TubeConfig
from stal_ros.data.motion import CLASS_NAMES, make_split, MotionConfig
from stal_ros.frames import latency_frames
from stal_ros.metrics.annotations import FrameDetections
from stal_ros.structures import Detections

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL = REPO / 'models' / 'lite_dis.pt'
TOPIC = '/camera/image_raw'


@pytest.fixture(scope='module')
def videos():
    """Make two short 64 x 64 benchmark clips of 12 frames, with their ground truth."""
    return make_split('test', 2, MotionConfig(height=64, width=64, num_frames=12,
                                              min_action_frames=4))


def _frames(n=5, h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_tool_bag_and_independent_mcap_bag_read_identically(tmp_path):
    """A bag written by stal-bag and one written by the mcap library from rclpy's CDR agree."""
    from mcap.writer import Writer
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    frames = _frames()
    start = 1_700_000_000 * 10**9
    ours = tmp_path / 'ours'
    write_video_bag(ours, frames, topic=TOPIC, frame_id='cam', fps=20.0, start_ns=start)
    theirs = tmp_path / 'theirs.mcap'
    msgdef, _ = typestore().generate_msgdef('sensor_msgs/msg/Image')
    with open(theirs, 'wb') as f:
        writer = Writer(f)
        writer.start(profile='ros2', library='test')
        schema = writer.register_schema(name='sensor_msgs/msg/Image', encoding='ros2msg',
                                        data=msgdef.encode())
        channel = writer.register_channel(topic=TOPIC, message_encoding='cdr',
                                          schema_id=schema)
        for t, rgb in enumerate(frames):
            stamp = start + t * 50_000_000
            msg = Image(height=24, width=32, encoding='bgr8', step=32 * 3 + 4)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
            msg.header.frame_id = 'cam'
            padded = np.zeros((24, 32 * 3 + 4), np.uint8)       # rows padded by 4 bytes
            padded[:, :96] = rgb[..., ::-1].reshape(24, 96)
            msg.data = padded.tobytes()
            writer.add_message(channel_id=channel, log_time=stamp, data=serialize_message(msg),
                               publish_time=stamp)
        writer.finish()
    with BagReader(ours) as a, BagReader(theirs) as b:
        assert a.topics == b.topics == {TOPIC: 'sensor_msgs/msg/Image'}
        got_a, got_b = list(a.images(TOPIC)), list(b.images(TOPIC))
    assert len(got_a) == len(got_b) == len(frames)
    for x, y, rgb in zip(got_a, got_b, frames):
        assert (x.index, x.stamp_ns, x.log_time_ns, x.frame_id) == \
            (y.index, y.stamp_ns, y.log_time_ns, y.frame_id)
        np.testing.assert_array_equal(x.rgb, rgb)
        np.testing.assert_array_equal(y.rgb, rgb)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
@pytest.mark.parametrize('compressed', [False, True])
def test_storages_and_compressed_images_round_trip(tmp_path, storage, compressed):
    y, x = np.mgrid[0:24, 0:32]
    frames = np.stack([np.stack([x * 8, y * 10, (x + y + 20 * t) % 256], -1)
                       for t in range(3)]).astype(np.uint8)          # smooth: JPEG keeps it
    write_video_bag(tmp_path / 'bag', frames, compressed=compressed, storage=storage)
    meta = (tmp_path / 'bag' / 'metadata.yaml').read_text()
    assert storage in meta
    with BagReader(tmp_path / 'bag') as bag:
        kind = 'CompressedImage' if compressed else 'Image'
        assert bag.topics == {TOPIC: f'sensor_msgs/msg/{kind}'}
        images = list(bag.images(TOPIC))
    assert [i.index for i in images] == [0, 1, 2]
    for image, rgb in zip(images, frames):
        if compressed:   # JPEG at quality 95: close, not exact
            assert np.abs(image.rgb.astype(int) - rgb).mean() < 3
        else:
            np.testing.assert_array_equal(image.rgb, rgb)


def test_yuv_and_mono_images_in_a_bag_decode_as_the_node_does(tmp_path):
    store = typestore()
    types = rosbags_types()
    image = store.types['sensor_msgs/msg/Image']
    yuv = np.random.default_rng(1).integers(0, 256, (4, 8 * 2), dtype=np.uint8)
    mono = np.random.default_rng(2).integers(0, 256, (4, 8), dtype=np.uint8)
    with BagWriter(tmp_path / 'bag') as bag:
        bag.write(TOPIC, 1, image(header=messages.header(types, 1, 'c'), height=4, width=8,
                                  encoding='yuv422', is_bigendian=0, step=16,
                                  data=yuv.reshape(-1)))
        bag.write(TOPIC, 2, image(header=messages.header(types, 2, 'c'), height=4, width=8,
                                  encoding='mono8', is_bigendian=0, step=8,
                                  data=mono.reshape(-1)))
    from stal_ros.images import decode_image
    with BagReader(tmp_path / 'bag') as bag:
        got = list(bag.images(TOPIC))
    np.testing.assert_array_equal(got[0].rgb, decode_image(yuv.reshape(-1), 4, 8, 'yuv422', 16))
    np.testing.assert_array_equal(got[1].rgb, np.repeat(mono[..., None], 3, axis=2))


def test_ground_truth_topic_round_trips(tmp_path, videos):
    video = videos[0]
    write_video_bag(tmp_path / 'bag', video.frames, tubes=video.tubes, class_names=CLASS_NAMES)
    with BagReader(tmp_path / 'bag') as bag:
        assert bag.count(GT_TOPIC) == video.num_frames
        stamps = [i.stamp_ns for i in bag.images(TOPIC)]
        gt_msgs = [m for _, _, m in bag.messages(GT_TOPIC)]
    got = ground_truth_annotations(FrameIndex('v', stamps), gt_msgs)
    assert len(got.tubes) == len(video.tubes) > 0
    for mine, tube in zip(got.tubes, video.tubes):
        assert mine.label == tube.label
        np.testing.assert_array_equal(mine.frames, tube.frames)
        np.testing.assert_allclose(mine.boxes, tube.boxes, atol=1e-4)


def _perfect_outputs(video, stamps, types, labels=None):
    """Build the messages a perfect node would publish for ``video`` (its ground truth)."""
    tubes = list(video.tubes)
    if labels is not None:
        tubes = [type(t)(label=k, frames=t.frames, boxes=t.boxes) for t, k in zip(tubes, labels)]
    tube_msgs = ground_truth_messages(types, tubes, stamps, 'cam', CLASS_NAMES)
    det_msgs = []
    for t, stamp in enumerate(stamps):
        boxes, labs = [], []
        for tube in tubes:
            hit = np.flatnonzero(tube.frames == t)
            if hit.size:
                boxes.append(tube.boxes[hit[0]])
                labs.append(tube.label)
        dets = (Detections(np.array(boxes, np.float32), np.ones(len(boxes), np.float32),
                           np.array(labs, np.int64)) if boxes else Detections.empty())
        det_msgs.append(messages.detections_to_msg(types, messages.header(types, stamp, 'cam'),
                                                   dets))
    return det_msgs, tube_msgs


def _score(videos, label_map=None):
    types = rosbags_types()
    outs = []
    for video in videos:
        stamps = [10**9 + 10**8 * t for t in range(video.num_frames)]
        index = FrameIndex(video.name, stamps)
        labels = None if label_map is None else [label_map[t.label] for t in video.tubes]
        det_msgs, tube_msgs = _perfect_outputs(video, stamps, types, labels)
        gt_msgs = ground_truth_messages(types, video.tubes, stamps, 'cam', CLASS_NAMES)
        outs.append(video_outputs(index, ground_truth_annotations(index, gt_msgs), det_msgs,
                                  tube_msgs))
    return score(outs, CLASS_NAMES)


def test_perfect_stream_scores_one_and_a_shuffled_one_less(videos):
    perfect = _score(videos)
    assert perfect['frame'].mean_ap == pytest.approx(1.0)
    assert perfect['video'].mean_ap(0.5) == pytest.approx(1.0)
    shuffled = _score(videos, label_map=[(k + 1) % len(CLASS_NAMES)
                                         for k in range(len(CLASS_NAMES))])
    assert shuffled['frame'].mean_ap < 0.5
    assert shuffled['video'].mean_ap(0.5) < 0.5


def test_collector_rebuilds_a_tube_from_capped_histories():
    """Active tubes carry only their last frames; the union over messages is the whole tube."""
    from stal_ros.structures import Tube
    types = rosbags_types()
    n = 10
    boxes = np.array([[t, 0, t + 5, 5] for t in range(n)], np.float32)
    stamps = np.arange(n, dtype=np.int64) * 100 + 1000
    collector = TubeCollector()
    for t in range(n):
        lo = max(0, t - 2)     # a history of 3 frames per message
        state = 'finished' if t == n - 1 else 'active'
        tube = Tube('c/1', 2, 0.5 + t / 100, state, int(stamps[0]), int(stamps[t]), 0, t, t + 1,
                    stamps[lo:t + 1], np.arange(lo, t + 1), boxes[lo:t + 1],
                    np.full(t + 1 - lo, 0.7, np.float32), np.ones(t + 1 - lo, bool))
        collector.add(messages.tubes_to_msg(types, messages.header(types, int(stamps[t]), 'c'),
                                            [tube], CLASS_NAMES))
    got = collector.tubes['c/1']
    s, b, _ = got.history()
    np.testing.assert_array_equal(s, stamps)
    np.testing.assert_allclose(b, boxes)
    assert got.finished and got.score == pytest.approx(0.59) and got.label == 2


def test_offline_run_equals_the_evaluation_command(tmp_path, videos):
    """The bag pipeline sees what stal-evaluate sees: the same raw detections, frame by frame.

    Except the last frames of centred clips: a bag, like a live stream, does not end for the
    node, while stal-evaluate ends each video (``FrameBuffer.flush``).
    """
    from stal_ros.evaluate import evaluation_tubes_config, run_video
    from stal_ros.net.detector import build_detector
    detector = build_detector(checkpoint=str(MODEL))
    video = make_split('test', 1, MotionConfig())[0]           # the model's 128 x 128
    write_video_bag(tmp_path / 'bag', video.frames, tubes=video.tubes, class_names=CLASS_NAMES)
    tubes = evaluation_tubes_config(TubeConfig(), video.num_frames)
    run = run_bag(detector, tmp_path / 'bag', TOPIC, tubes,
                  max_history=OutputConfig().max_history, results=tmp_path / 'results')
    expected, _ = run_video(detector, video, tubes)
    late = latency_frames(detector.config.frames)
    assert late == 2 and detector.config.frames.pad
    assert len(run.detection_msgs) == video.num_frames - late     # the last 2 wait
    kept = expected.frames < video.num_frames - late
    expected = FrameDetections(expected.videos[kept], expected.frames[kept],
                               expected.labels[kept], expected.scores[kept],
                               expected.boxes[kept])
    # One clip per call here, 16 per call there: equal up to float noise, so near-ties may
    # come out in another order within a frame; compare in a canonical order.

    def canonical(d):
        order = np.lexsort((np.round(d.boxes[:, 0], 2), d.labels, d.frames))
        return d.frames[order], d.labels[order], d.boxes[order], d.scores[order]

    for got, want in zip(canonical(run.raw), canonical(expected)):
        np.testing.assert_allclose(got, want, atol=2e-3)   # pixels and scores
    # The results bag holds the same messages, scored the same.
    direct = score([outputs_of(run, detector.class_names)], detector.class_names)
    with BagReader(tmp_path / 'results') as bag:
        assert bag.count('/detections') == bag.count('/tubes') == len(run.detection_msgs)
        index = run.index
        gt = ground_truth_annotations(index, [m for _, _, m in bag.messages(GT_TOPIC)])
        back = video_outputs(index, gt, [m for _, _, m in bag.messages('/detections')],
                             [m for _, _, m in bag.messages('/tubes')])
    again = score([back], detector.class_names)
    assert again['frame'].mean_ap == pytest.approx(direct['frame'].mean_ap)
    assert again['video'].mean_ap(0.5) == pytest.approx(direct['video'].mean_ap(0.5))


def test_stal_bag_write_and_eval_commands(tmp_path, capsys):
    assert bag_main(['write', '--split', 'test', '--count', '1', '--out',
                     str(tmp_path / 'bags'), '--storage', 'sqlite3']) == 0
    assert bag_main(['eval', str(tmp_path / 'bags'), '--model', str(MODEL), '--out',
                     str(tmp_path / 'report'), '--no-progress']) == 0
    report = json.loads((tmp_path / 'report' / 'report.json').read_text())
    assert report['mode'] == 'offline' and len(report['sha256']) == 64
    assert 0.0 <= report['frame_map'] <= 1.0 and 0.0 <= report['frame_map_raw'] <= 1.0
    frames = report['config']['frames']        # padded centred clips: the last K // 2 wait
    assert frames['pad'] and frames['mode'] == 'centred'
    assert report['frames_published'] == report['num_frames'] - frames['num_frames'] // 2
    for row in report['frame_classes']:                # every true box in its class's row
        assert sum(report['frame_confusion'][row['class']].values()) == row['num_gt']
    assert (tmp_path / 'report' / 'pr_curves.png').stat().st_size > 0
    assert 'frame-mAP@0.5' in capsys.readouterr().out


def test_unreadable_bags_fail_naming_file_and_topic(tmp_path):
    write_video_bag(tmp_path / 'bag', _frames(4))
    with BagReader(tmp_path / 'bag') as bag:
        with pytest.raises(BagError, match=r'bag, topic /nope: no such topic; the bag has: '
                           r'/camera/image_raw \(sensor_msgs/msg/Image\)'):
            list(bag.images('/nope'))
    # Truncated: the end of the MCAP file (its summary and footer) is gone.
    mcap = next((tmp_path / 'bag').glob('*.mcap'))
    data = mcap.read_bytes()
    mcap.write_bytes(data[:len(data) // 2])
    with pytest.raises(BagError, match=str(tmp_path / 'bag')):
        with BagReader(tmp_path / 'bag') as bag:
            list(bag.images(TOPIC))
    # Unknown storage.
    other = tmp_path / 'other'
    write_video_bag(other, _frames(2))
    meta = other / 'metadata.yaml'
    meta.write_text(meta.read_text().replace('storage_identifier: mcap',
                                             'storage_identifier: tape'))
    with pytest.raises(BagError, match=f'{other}: cannot open the bag'):
        BagReader(other)
    with pytest.raises(BagError, match='no such bag'):
        BagReader(tmp_path / 'missing')


def test_a_message_type_the_tool_does_not_know_is_named(tmp_path):
    types = rosbags_types()
    with BagWriter(tmp_path / 'bag') as bag:
        bag.write('/tubes', 1, messages.tubes_to_msg(types, messages.header(types, 1, 'c'), [],
                                                     CLASS_NAMES))
    with BagReader(tmp_path / 'bag') as bag:
        with pytest.raises(BagError, match='topic /tubes: message type '
                           'stal_ros/msg/ActionTubeArray, expected one of'):
            list(bag.images('/tubes'))


def test_an_interrupted_write_leaves_no_bag(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with BagWriter(tmp_path / 'bag') as bag:
            bag.write(TOPIC, 1, image_message(_frames(1)[0], 1, 'c'))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BagError, match='already exists'):
        write_video_bag(tmp_path, _frames(1))


def test_frame_detections_match_stamps_or_fail(videos):
    index = FrameIndex('v', [5, 7, 9])
    assert index.frame(7, 'x') == 1
    with pytest.raises(ValueError, match='v: a Detection2DArray has stamp 8 ns, which is no '
                       'camera image'):
        index.frame(8, 'a Detection2DArray')
    assert isinstance(FrameDetections.concatenate([]), FrameDetections)


def test_a_video_file_becomes_a_bag_without_ground_truth(tmp_path):
    import cv2
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    y, x = np.mgrid[0:24, 0:32]
    for t in range(6):
        writer.write(np.stack([x * 8, y * 10, np.full_like(x, 40 * t)], -1).astype(np.uint8))
    writer.release()
    assert bag_main(['write', '--video', str(path), '--out', str(tmp_path / 'bag'),
                     '--fps', '5']) == 0
    with BagReader(tmp_path / 'bag') as bag:
        assert bag.topics == {TOPIC: 'sensor_msgs/msg/Image'}
        images = list(bag.images(TOPIC))
    assert len(images) == 6 and images[0].rgb.shape == (24, 32, 3)
    assert images[1].stamp_ns - images[0].stamp_ns == 200_000_000      # 5 frames per second
    assert bag_main(['write', '--video', str(tmp_path / 'missing.avi'), '--out',
                     str(tmp_path / 'bag2')]) == 2
    assert not (tmp_path / 'bag2').exists()
