# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Frame-AP, ST-IoU and video-AP against hand-computed values, both protocols."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from stal_ros.geometry import box_iou
from stal_ros.metrics import (average_precision, DetectedTube, frame_ap, frame_confusion,
                              FrameDetections, GroundTruth, GroundTruthTube, precision_recall,
                              spatio_temporal_iou, temporal_iou, tube_nms, video_ap,
                              VideoAnnotations)
from stal_ros.structures import Detections

BOX = [0.0, 0.0, 10.0, 10.0]  # continuous: 10 x 10 = 100 pixels


def gt_split(tubes, num_classes=3, videos=('v1', 'v2')):
    by_video = {v: [] for v in videos}
    for t in tubes:
        by_video[t.video].append(t)
    return GroundTruth([VideoAnnotations(v, 50, tuple(ts)) for v, ts in by_video.items()],
                       num_classes, [f'act{k}' for k in range(num_classes)])


def gtube(video, label, first, last, box=BOX):
    n = last - first + 1
    return GroundTruthTube(video, label, np.arange(first, last + 1), np.tile(box, (n, 1)))


def dtube(video, label, score, first, last, box=BOX):
    n = last - first + 1
    return DetectedTube(video, label, score, np.arange(first, last + 1), np.tile(box, (n, 1)))


# ----------------------------------------------------------------------------------- AP rules

def test_ap_protocols_hand_computed():
    p, r = precision_recall([True, False, True], 3)
    np.testing.assert_allclose(p, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(r, [1 / 3, 1 / 3, 2 / 3])
    # VOC: monotone precision [1, 1, 2/3, 2/3, 0] over recall steps 1/3, 1/3 (, 1/3 at 0).
    assert average_precision(p, r, 'road') == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))
    # ACT: trapezoids from (r 0, p 1): 1/3 * 1 + 0 + 1/3 * (1/2 + 2/3) / 2.
    assert average_precision(p, r, 'act') == pytest.approx(1 / 3 + (1 / 3) * (7 / 6) / 2)
    assert average_precision([], [], 'road') == 0.0
    with pytest.raises(ValueError, match="protocol: expected one of \\['act', 'road'\\]"):
        average_precision(p, r, 'coco')


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), max_size=30), st.integers(0, 10))
def test_ap_is_between_zero_and_one(tp, extra_gt):
    num_gt = sum(tp) + extra_gt
    if num_gt == 0:
        return
    p, r = precision_recall(tp, num_gt)
    for protocol in ('road', 'act'):
        ap = average_precision(p, r, protocol)
        assert 0.0 <= ap <= 1.0 + 1e-12
        if extra_gt == 0 and tp and all(tp):
            assert ap == pytest.approx(1.0)


# -------------------------------------------------------------------------------- box overlaps

def test_continuous_iou_hand_computed():
    # (0,0,10,10) covers 100 pixels, (0,0,10,5) 50 of them: IoU 0.5.
    assert box_iou(np.array([BOX]), np.array([[0, 0, 10, 5.0]]))[0, 0] == pytest.approx(0.5)
    assert box_iou(np.array([BOX]), np.array([[10, 0, 20, 10.0]]))[0, 0] == 0.0
    assert box_iou(np.array([BOX]), np.array([[9, 9, 19, 19.0]]))[0, 0] == pytest.approx(1 / 199)


def test_a_perfect_detection_scores_one_end_to_end():
    """Detector output (continuous pixels) equal to an inclusive annotation: frame-AP 1.0.

    ACT's annotation (0, 0, 39, 39) covers 40 x 40 pixels; the detector reports that region as
    (0, 0, 40, 40).  Scored with the inclusive convention on both (before) its IoU was
    1600 / 1681 = 0.95; converted once where the annotation is read, it is exactly 1.
    """
    gttubes = {'v1': {0: [np.array([[1, 0, 0, 39, 39], [2, 10, 20, 49, 59]], np.float64)]}}
    gt = GroundTruth.from_act(gttubes, {'v1': 5}, ['walk'])
    boxes = np.array([[0, 0, 40, 40], [10, 20, 50, 60]], np.float32)
    dets = FrameDetections.concatenate([
        FrameDetections.from_detections('v1', f, Detections(b[None], np.array([0.9]), [0]))
        for f, b in zip((1, 2), boxes)])
    for protocol in ('road', 'act'):
        assert frame_ap(gt, dets, 0.999999, protocol).mean_ap == 1.0
        tube = DetectedTube('v1', 0, 0.9, [1, 2], boxes)
        assert spatio_temporal_iou(tube.frames, tube.boxes, gt.tubes(0)[0].frames,
                                   gt.tubes(0)[0].boxes) == 1.0
        assert video_ap(gt, [tube], [0.999999], protocol).mean_ap(0.999999) == 1.0


def test_one_shared_frame_counts_as_one_frame():
    """Inclusive frame counts (ACT); ROAD's MATLAB would give 0 here (a kept difference)."""
    f1, f2 = np.arange(1, 6), np.arange(5, 10)
    assert temporal_iou(f1, f2) == pytest.approx(1 / 9)
    assert temporal_iou(f1, np.arange(4, 10)) == pytest.approx(2 / 9)
    assert temporal_iou(np.array([3]), np.array([3])) == 1.0


def test_st_iou_on_partial_temporal_overlap():
    f1, f2 = np.arange(1, 11), np.arange(6, 16)
    b1, b2 = np.tile(BOX, (10, 1)), np.tile(BOX, (10, 1))
    assert temporal_iou(f1, f2) == pytest.approx(5 / 15)
    assert spatio_temporal_iou(f1, b1, f2, b2) == pytest.approx(1 / 3)
    # Half-height boxes on the overlap only (frames 6-10): spatial 0.5 there.
    b2_half = b2.copy()
    b2_half[:5] = [0, 0, 10, 5]
    assert spatio_temporal_iou(f1, b1, f2, b2_half) == pytest.approx(1 / 3 * 0.5)
    # Varying overlap: IoUs 1, 0.5, 0, 0, 0 on frames 6..10 -> mean 0.3.
    b2_var = b2.copy()
    b2_var[1] = [0, 0, 10, 5]
    b2_var[2:5] = [20, 20, 30, 30]
    assert spatio_temporal_iou(f1, b1, f2, b2_var) == pytest.approx(1 / 3 * 0.3)
    assert spatio_temporal_iou(f1, b1, np.arange(11, 20), np.tile(BOX, (9, 1))) == 0.0
    # A hole in one tube inside the overlap counts as IoU 0 for that frame.
    f_hole = np.array([1, 2, 4, 5])
    assert spatio_temporal_iou(np.arange(1, 6), np.tile(BOX, (5, 1)), f_hole,
                               np.tile(BOX, (4, 1))) == pytest.approx(4 / 5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20), st.integers(1, 15), st.integers(0, 20), st.integers(1, 15),
       st.floats(0, 50), st.floats(0, 50), st.floats(1, 40))
def test_st_iou_symmetric_bounded_and_one_on_itself(s1, n1, s2, n2, x1, x2, w):
    f1, f2 = np.arange(s1, s1 + n1), np.arange(s2, s2 + n2)
    b1 = np.tile([x1, 0, x1 + w, 30], (n1, 1))
    b2 = np.tile([x2, 5, x2 + w, 25], (n2, 1))
    ab, ba = spatio_temporal_iou(f1, b1, f2, b2), spatio_temporal_iou(f2, b2, f1, b1)
    assert ab == pytest.approx(ba) and 0.0 <= ab <= 1.0
    assert spatio_temporal_iou(f1, b1, f1, b1) == pytest.approx(1.0)
    iou_ab = box_iou(b1[:1], b2[:1])
    np.testing.assert_allclose(iou_ab, box_iou(b2[:1], b1[:1]).T)


# ------------------------------------------------------------------------------------ frame-AP

def test_frame_ap_duplicates_are_false_positives():
    gt = gt_split([gtube('v1', 0, 1, 1), gtube('v1', 0, 2, 2)], 1)
    dets = FrameDetections.from_records([
        ('v1', 1, 0, 0.9, BOX),          # TP
        ('v1', 1, 0, 0.8, [0, 0, 10, 9]),  # duplicate of the same box: FP
        ('v1', 2, 0, 0.7, BOX)])         # TP
    res = frame_ap(gt, dets)
    c = res.classes[0]
    np.testing.assert_allclose(c.precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(c.recall, [1 / 2, 1 / 2, 1])
    assert (c.num_gt, c.num_det, c.num_tp) == (2, 3, 2)
    assert c.ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # ROAD / VOC
    assert frame_ap(gt, dets, protocol='act').classes[0].ap == pytest.approx(
        0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert res.protocol == 'road' and 'xVOCap' in res.format_table()


def test_frame_ap_ties_keep_input_order():
    gt = gt_split([gtube('v1', 0, 1, 1)], 1)
    fp_first = FrameDetections.from_records([('v1', 3, 0, 0.5, BOX), ('v1', 1, 0, 0.5, BOX)])
    tp_first = FrameDetections.from_records([('v1', 1, 0, 0.5, BOX), ('v1', 3, 0, 0.5, BOX)])
    # FP then TP: precision [0, 1/2] at recall [0, 1] -> VOC AP 1/2; TP first -> 1.
    assert frame_ap(gt, fp_first).mean_ap == pytest.approx(0.5)
    assert frame_ap(gt, tp_first).mean_ap == pytest.approx(1.0)
    assert frame_ap(gt, fp_first, protocol='act').mean_ap == pytest.approx(0.5 * 0.5)


def test_frame_ap_classes_without_detections_or_ground_truth():
    gt = gt_split([gtube('v1', 0, 1, 2), gtube('v2', 1, 1, 1)], 3)
    dets = FrameDetections.from_records([('v1', 1, 0, 0.9, BOX), ('v1', 2, 0, 0.8, BOX),
                                         ('v1', 1, 2, 0.9, BOX)])
    res = frame_ap(gt, dets)
    assert res.classes[0].ap == pytest.approx(1.0)
    assert res.classes[1].ap == 0.0 and res.classes[1].num_det == 0  # GT, no detection
    assert math.isnan(res.classes[2].ap) and res.classes[2].num_gt == 0  # no GT
    assert res.mean_ap == pytest.approx(0.5)  # mean over classes with ground truth
    table = res.format_table()
    assert 'act2' in table and 'n/a' in table and '50.00' in table


def test_frame_ap_threshold_is_inclusive_and_best_unmatched_box():
    gt = gt_split([gtube('v1', 0, 1, 1), gtube('v1', 0, 1, 1, [5, 0, 15, 10])], 1)
    # IoU 0.5 exactly -> TP at threshold 0.5 (>=, ROAD's frameAp.m and ACT).
    half = FrameDetections.from_records([('v1', 1, 0, 0.9, [0, 0, 10, 5])])
    for protocol in ('road', 'act'):
        assert frame_ap(gt_split([gtube('v1', 0, 1, 1)], 1), half,
                        protocol=protocol).mean_ap == pytest.approx(1.0)
    # First detection takes its best box (BOX); the second, overlapping both, gets the other.
    dets = FrameDetections.from_records([('v1', 1, 0, 0.9, BOX),
                                         ('v1', 1, 0, 0.8, [2, 0, 12, 10])])
    assert frame_ap(gt, dets, iou_threshold=0.4).classes[0].num_tp == 2
    assert frame_ap(gt, dets, iou_threshold=0.7).classes[0].num_tp == 1


def test_frame_confusion_counts_the_class_of_the_best_overlapping_box():
    gt = gt_split([gtube('v1', 0, 1, 3), gtube('v2', 1, 1, 2),
                   gtube('v2', 2, 1, 1, [20, 20, 30, 30])], 3)
    dets = FrameDetections.from_records([
        ('v1', 1, 0, 0.9, BOX), ('v1', 1, 1, 0.5, BOX),        # right class scores best
        ('v1', 2, 1, 0.8, BOX), ('v1', 2, 0, 0.7, BOX),        # class 1 scores best
        ('v1', 3, 0, 0.9, [20, 20, 30, 30]),                    # no overlap: missed
        ('v2', 1, 2, 0.6, BOX), ('v2', 1, 1, 0.9, [0, 0, 10, 4]),  # IoU 0.4 does not count
        ('v2', 2, 1, 0.3, [0, 0, 10, 5]),                       # IoU 0.5 counts
        ('v2', 1, 0, 0.2, [20, 20, 30, 30])])                   # the class-2 box, given 0
    counts = frame_confusion(gt, dets, 0.5)
    np.testing.assert_array_equal(counts, [[1, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]])
    assert counts.sum(1).tolist() == [3, 2, 1]              # every true box counted once
    assert frame_confusion(gt, dets, 0.4)[1].tolist() == [0, 2, 0, 0]   # 0.9 box: IoU 0.4
    assert frame_confusion(gt, FrameDetections.from_records([]), 0.5)[:, 3].tolist() == \
        [3, 2, 1]
    with pytest.raises(ValueError, match="video 'v9' is not in the ground truth"):
        frame_confusion(gt, FrameDetections.from_records([('v9', 1, 0, 0.5, BOX)]))


def perfect_split(rng, num_videos=4, num_classes=3):
    tubes, records = [], []
    for v in range(num_videos):
        for k in range(num_classes):
            first = int(rng.integers(1, 10))
            n = int(rng.integers(5, 15))
            xy = rng.uniform(0, 200, 2)
            box = np.concatenate([xy, xy + rng.uniform(20, 60, 2)])
            boxes = box + rng.normal(0, 3, (n, 4)).cumsum(0)
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
            tubes.append(GroundTruthTube(f'v{v}', k, np.arange(first, first + n), boxes))
            records += [(f'v{v}', first + i, k, float(rng.uniform(0.5, 1)), boxes[i])
                        for i in range(n)]
    videos = [VideoAnnotations(f'v{v}', 40, tuple(t for t in tubes if t.video == f'v{v}'))
              for v in range(num_videos)]
    gt = GroundTruth(videos, num_classes)
    return gt, tubes, records


def test_perfect_detections_score_one_and_shuffled_labels_less():
    rng = np.random.default_rng(0)
    gt, tubes, records = perfect_split(rng)
    dets = FrameDetections.from_records(records)
    dtubes = [DetectedTube(t.video, t.label, 0.5 + 0.01 * i, t.frames, t.boxes)
              for i, t in enumerate(tubes)]
    for protocol in ('road', 'act'):
        assert frame_ap(gt, dets, protocol=protocol).mean_ap == pytest.approx(1.0)
        res = video_ap(gt, dtubes, protocol=protocol)
        assert all(res.mean_ap(t) == pytest.approx(1.0) for t in (0.2, 0.5, 0.75))
        assert res.mean_ap_coco == pytest.approx(1.0)
    shuffled = FrameDetections(dets.videos, dets.frames, rng.permutation(dets.labels),
                               dets.scores, dets.boxes)
    assert frame_ap(gt, shuffled).mean_ap < 0.9
    labels = rng.permutation([t.label for t in dtubes])
    while np.array_equal(labels, [t.label for t in dtubes]):
        labels = rng.permutation(labels)
    bad = [DetectedTube(t.video, int(k), t.score, t.frames, t.boxes)
           for t, k in zip(dtubes, labels)]
    assert video_ap(gt, bad).mean_ap(0.5) < 1.0


def test_frame_detections_from_pipeline_detections():
    det = Detections(np.array([BOX], np.float32), np.array([0.7], np.float32), np.array([1]))
    fd = FrameDetections.concatenate([FrameDetections.from_detections('v1', 4, det),
                                      FrameDetections.from_detections('v2', 5, det)])
    assert len(fd) == 2 and fd.videos.tolist() == ['v1', 'v2'] and fd.frames.tolist() == [4, 5]


# ------------------------------------------------------------------------------------ video-AP

def test_video_ap_hand_computed():
    gt = gt_split([gtube('v1', 0, 1, 10), gtube('v2', 0, 1, 10), gtube('v1', 1, 1, 10)], 2)
    tubes = [
        dtube('v1', 0, 0.9, 6, 15),  # ST-IoU 5/15 = 1/3 with the v1 tube
        dtube('v2', 0, 0.8, 1, 10),  # ST-IoU 1
        dtube('v2', 0, 0.7, 1, 10),  # duplicate: FP
        dtube('v1', 1, 0.6, 1, 8),  # ST-IoU 0.8
    ]
    res = video_ap(gt, tubes)
    # class 0 @0.2: TP, TP, FP -> precision [1, 1, 2/3], recall [1/2, 1, 1] -> AP 1.
    assert res.results[0.2].classes[0].ap == pytest.approx(1.0)
    # @0.5: FP, TP, FP -> precision [0, 1/2, 1/3], recall [0, 1/2, 1/2] -> AP 1/4.
    assert res.results[0.5].classes[0].ap == pytest.approx(0.25)
    assert res.results[0.5].classes[1].ap == pytest.approx(1.0)
    assert res.results[0.85].classes[1].ap == 0.0
    assert res.mean_ap(0.5) == pytest.approx(0.625)
    assert res.mean_ap(0.75) == pytest.approx((0.25 + 1.0) / 2)
    # 0.5:0.95: class 0 is 1/4 everywhere; class 1's ST-IoU is exactly 0.8, a TP up to 0.75
    # under ROAD (ST-IoU > threshold: 6 of 10 thresholds) and up to 0.8 under ACT (>=: 7).
    assert res.result(0.8).classes[1].ap == 0.0
    assert res.mean_ap_coco == pytest.approx((0.25 + 0.6) / 2)
    act = video_ap(gt, tubes, protocol='act')
    assert act.result(0.8).classes[1].ap == 1.0
    assert act.tube_nms_iou == 0.3 and res.tube_nms_iou is None
    # ACT's tube NMS drops the duplicate: class 0 @0.5 is FP, TP -> (1/2)(0 + 1/2)/2 = 1/8.
    assert act.results[0.5].classes[0].num_det == 2
    assert act.results[0.5].classes[0].ap == pytest.approx(0.125)
    table = res.format_table()
    assert '@0.2' in table and '@.5:.95' in table and 'road' in table and 'act1' in table


def test_tube_nms_keeps_best_per_video_and_class():
    a, b = dtube('v1', 0, 0.9, 1, 10), dtube('v1', 0, 0.8, 2, 10)
    c, d = dtube('v2', 0, 0.7, 1, 10), dtube('v1', 1, 0.6, 1, 10)
    assert tube_nms([b, a, c, d], 0.3) == [a, c, d]


def test_ground_truth_from_act_annotations():
    gttubes = {'Basketball/v_01': {0: [np.array([[1, 0, 0, 9, 9], [2, 1, 1, 10, 10]])]},
               'Diving/v_02': {1: [np.array([[5, 0, 0, 9, 9]]), np.array([[7, 3, 3, 9, 9]])]}}
    nframes = {'Basketball/v_01': 30, 'Diving/v_02': 40, 'Diving/v_03': 20}
    gt = GroundTruth.from_act(gttubes, nframes, ['Basketball', 'Diving'])
    assert gt.num_classes == 2 and len(gt.videos) == 3 and len(gt.tubes(1)) == 2
    t = gt.tubes(0)[0]
    # Inclusive (1, 1, 10, 10) covers 10 x 10 pixels: continuous (1, 1, 11, 11).
    assert t.frames.tolist() == [1, 2] and t.boxes[1].tolist() == [1, 1, 11, 11]
    raw = GroundTruth.from_act(gttubes, nframes, ['Basketball', 'Diving'], inclusive=False)
    assert raw.tubes(0)[0].boxes[1].tolist() == [1, 1, 10, 10]
    assert gt.videos['Diving/v_03'].num_frames == 20 and gt.videos['Diving/v_03'].tubes == ()
    only = GroundTruth.from_act(gttubes, nframes, ['Basketball', 'Diving'], ['Diving/v_02'])
    assert list(only.videos) == ['Diving/v_02']


def test_malformed_inputs_raise_value_errors():
    with pytest.raises(ValueError, match='x2 >= x1'):
        GroundTruthTube('v', 0, [1, 2], [[5, 0, 1, 9], [0, 0, 9, 9]])
    with pytest.raises(ValueError, match='strictly increasing'):
        GroundTruthTube('v', 0, [2, 1], [BOX, BOX])
    with pytest.raises(ValueError, match=r'expected shape \(2, 4\)'):
        GroundTruthTube('v', 0, [1, 2], [BOX])
    with pytest.raises(ValueError, match='score'):
        DetectedTube('v', 0, float('nan'), [1], [BOX])
    with pytest.raises(ValueError, match='score'):
        DetectedTube('v', 0, -1.0, [1], [BOX])
    with pytest.raises(ValueError, match='scores'):
        FrameDetections.from_records([('v1', 1, 0, float('nan'), BOX)])
    with pytest.raises(ValueError, match='scores'):
        FrameDetections(['v1'], [1], [0], [-0.5], [BOX])
    with pytest.raises(ValueError, match=r'labels: expected shape \(2,\)'):
        FrameDetections(['v1', 'v1'], [1, 2], [0], [0.5, 0.5], [BOX, BOX])
    gt = gt_split([gtube('v1', 0, 1, 1)], 1)
    with pytest.raises(ValueError, match="video 'v9' is not in the ground truth"):
        frame_ap(gt, FrameDetections.from_records([('v9', 1, 0, 0.5, BOX)]))
    with pytest.raises(ValueError, match='num_classes = 1'):
        frame_ap(gt, FrameDetections.from_records([('v1', 1, 3, 0.5, BOX)]))
    with pytest.raises(ValueError, match='iou_threshold'):
        frame_ap(gt, FrameDetections.from_records([]), iou_threshold=0)
    with pytest.raises(ValueError, match="video 'v9'"):
        video_ap(gt, [dtube('v9', 0, 0.5, 1, 2)])
    with pytest.raises(ValueError, match='listed twice'):
        GroundTruth([VideoAnnotations('a', 3), VideoAnnotations('a', 3)], 1)
    with pytest.raises(ValueError, match='label 2'):
        GroundTruth([VideoAnnotations('a', 3, (gtube('a', 2, 1, 1),))], 2)


def test_video_ap_thresholds_are_used_as_given():
    """0.125 was silently rounded to 0.12 (a tube at ST-IoU 0.121 counted as a TP)."""
    gt = gt_split([gtube('v1', 0, 1, 10)], 1)
    # ST-IoU 0.121: frames 1..10 against a box of IoU 0.121 on every frame.
    box = [0, 0, 10, 1.21]
    res = video_ap(gt, [dtube('v1', 0, 0.9, 1, 10, box)], [0.125, 0.12])
    assert sorted(res.results) == [0.12, 0.125]
    assert res.mean_ap(0.125) == 0.0 and res.mean_ap(0.12) == 1.0
    with pytest.raises(KeyError, match='0.3 was not computed'):
        res.mean_ap(0.3)
    with pytest.raises(ValueError, match='distinct'):
        video_ap(gt, [], [0.5, 0.5])


def test_empty_detections_give_zero_ap():
    gt = gt_split([gtube('v1', 0, 1, 3)], 1)
    assert frame_ap(gt, FrameDetections.from_records([])).mean_ap == 0.0
    assert video_ap(gt, []).mean_ap(0.5) == 0.0
