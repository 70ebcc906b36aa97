# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Box geometry: continuous and inclusive-pixel IoU, greedy NMS."""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

from stal_ros.geometry import (box_iou, box_iou_inclusive, greedy_nms, paired_iou,
                               paired_iou_inclusive)


def test_iou_hand_computed_in_both_conventions():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10]], np.float32)
    # Continuous: overlap 5 x 10 = 50, union 100 + 100 - 50.
    assert box_iou(a, b)[0, 0] == pytest.approx(50 / 150)
    # Inclusive pixels: columns 5..10 (6) x rows 0..10 (11) = 66, union 121 + 121 - 66.
    assert box_iou_inclusive(a, b)[0, 0] == pytest.approx(66 / 176)
    assert paired_iou_inclusive(a, b)[0] == pytest.approx(66 / 176)
    # Touching boxes: no area in common continuously, one pixel column when inclusive.
    c = np.array([[10, 0, 20, 10]], np.float32)
    assert box_iou(a, c)[0, 0] == 0.0
    assert box_iou_inclusive(a, c)[0, 0] == pytest.approx(11 / 231)


def grow(boxes):
    """Inclusive pixel boxes as continuous ones: x2 + 1, y2 + 1."""
    return boxes + np.array([0, 0, 1, 1], boxes.dtype)


int_boxes = hnp.arrays(np.int64, (6, 4), elements=st.integers(0, 40)).map(
    lambda a: np.concatenate([np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])],
                             1).astype(np.float64))


@settings(max_examples=80, deadline=None)
@given(int_boxes, int_boxes)
def test_inclusive_iou_is_continuous_iou_of_boxes_grown_by_one(a, b):
    # Integer pixel coordinates: every quantity is an exact integer, so equal to the bit.
    np.testing.assert_array_equal(box_iou_inclusive(a, b), box_iou(grow(a), grow(b)))
    np.testing.assert_array_equal(paired_iou_inclusive(a, b), np.diag(box_iou(grow(a), grow(b))))


def test_inclusive_iou_is_continuous_iou_of_boxes_grown_by_one_for_fractional_boxes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (2, 20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 30, (2, 20, 2))], -1)
    np.testing.assert_allclose(box_iou_inclusive(boxes[0], boxes[1]),
                               box_iou(grow(boxes[0]), grow(boxes[1])), rtol=1e-12, atol=1e-15)


def test_box_iou_batches_leading_dimensions():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 50, (2, 3, 7, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (2, 3, 7, 2))], -1).astype(np.float32)
    iou = box_iou(boxes[..., :4, :], boxes)
    assert iou.shape == (2, 3, 4, 7) and iou.dtype == np.float32
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(iou[i, j], box_iou(boxes[i, j, :4], boxes[i, j]))
    with pytest.raises(ValueError, match='equal leading shapes'):
        box_iou(boxes[0], boxes[1, 0])


def test_paired_iou_is_the_diagonal_of_box_iou():
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        xy = rng.uniform(0, 50, (2, 9, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(0, 30, (2, 9, 2))], -1).astype(dtype)
        boxes[0, 0] = boxes[1, 0] = 0  # an empty pair
        pairs = paired_iou(boxes[0], boxes[1])
        assert pairs.dtype == dtype and pairs[0] == 0
        np.testing.assert_array_equal(pairs, np.diag(box_iou(boxes[0], boxes[1])))
    with pytest.raises(ValueError, match='equal shapes'):
        paired_iou(boxes[0], boxes[1, :3])


def test_empty_boxes_have_iou_zero():
    dot = np.zeros((1, 4), np.float32)
    assert box_iou(dot, dot)[0, 0] == 0.0
    assert box_iou_inclusive(np.array([[0, 0, -1, -1]]), np.array([[0, 0, -1, -1]]))[0, 0] == 0.0


def test_greedy_nms_is_sequential_greedy():
    rng = np.random.default_rng(0)
    for _ in range(30):
        xy = rng.uniform(0, 50, (3, 7, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (3, 7, 2))], -1).astype(np.float32)
        valid = rng.random((3, 7)) < 0.9
        keep = greedy_nms(box_iou(boxes, boxes), valid, 0.3, 4)
        for c in range(3):
            kept = []
            for i in range(7):
                if valid[c, i] and len(kept) < 4 and all(
                        box_iou(boxes[c, j:j + 1], boxes[c, i:i + 1])[0, 0] <= 0.3
                        for j in kept):
                    kept.append(i)
            assert np.flatnonzero(keep[c]).tolist() == kept


def test_greedy_nms_keeps_a_box_whose_suppressor_was_suppressed():
    # A suppresses B, B would suppress C, A does not touch C: greedy keeps A and C.
    boxes = np.array([[[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]]], np.float32)
    valid = np.ones((1, 3), bool)
    assert greedy_nms(box_iou(boxes, boxes), valid, 0.3, 10).tolist() == [[True, False, True]]
    assert greedy_nms(box_iou(boxes, boxes), valid, 0.3, 1).tolist() == [[True, False, False]]


boxes_st = hnp.arrays(np.float32, (5, 4), elements=st.floats(0, 100, width=32)).map(
    lambda a: np.concatenate([np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])],
                             1))


@settings(max_examples=60, deadline=None)
@given(boxes_st, boxes_st)
def test_box_iou_is_symmetric_and_bounded(a, b):
    ab, ba = box_iou(a, b), box_iou(b, a)
    np.testing.assert_array_equal(ab, ba.T)
    assert np.all((ab >= 0) & (ab <= 1 + 1e-6))
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    np.testing.assert_allclose(np.diag(box_iou(a, a))[area > 1e-3], 1.0, rtol=1e-5)
