# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Annotated images: boxes in the tube's colour where the tube is, labels, trails."""

import numpy as np

from stal_ros.render import render, tube_colour
from stal_ros.structures import Tube


def make_tube(tube_id: str, boxes, observed_last: bool = True) -> Tube:
    n = len(boxes)
    observed = np.ones(n, bool)
    observed[-1] = observed_last
    return Tube(tube_id=tube_id, label=1, score=0.87, state='active', start_stamp_ns=10,
                last_stamp_ns=10 + n - 1, start_frame=0, last_frame=n - 1, num_observed=n,
                stamps_ns=np.arange(10, 10 + n), frame_indices=np.arange(n),
                boxes=np.asarray(boxes, np.float32), scores=np.full(n, 0.87, np.float32),
                observed=observed)


def test_render_draws_the_tube_box_trail_and_label_in_its_colour():
    frame = np.zeros((120, 160, 3), np.uint8)
    boxes = [[20 + 5 * i, 40, 60 + 5 * i, 100] for i in range(6)]
    tube = make_tube('cam/7', boxes)
    out = render(frame, [tube], ['wave', 'walk'], stamp_ns=15)
    colour = np.array(tube_colour('cam/7'))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not frame.any(), 'the input frame must not be drawn on'
    # The box outline of the last box (x 45..85, y 40..100) is in the tube's colour.
    assert (out[70, 45] == colour).all() and (out[70, 85] == colour).all()
    assert (out[100, 65] == colour).all()
    # The inside of the box stays untouched except for the trail through the centres (y 70).
    assert not out[90, 65].any()
    assert (out[70, 55] == colour).all()       # trail between centres x 40..65
    # A label bar is drawn above the box.
    assert (out[30:40, 45:80] == colour).all(axis=2).any()
    assert not out[45:, 100:].any()            # nothing right of the box below the label


def test_gap_filled_tube_is_drawn_thin_and_colours_are_stable():
    frame = np.zeros((120, 160, 3), np.uint8)
    solid = render(frame, [make_tube('a/1', [[20, 20, 80, 80]] * 3)], ['x', 'y'], stamp_ns=12)
    thin = render(frame, [make_tube('a/1', [[20, 20, 80, 80]] * 3, observed_last=False)],
                  ['x', 'y'], stamp_ns=12)
    assert np.count_nonzero(solid[50, :, 0]) > np.count_nonzero(thin[50, :, 0])
    assert tube_colour('a/1') == tube_colour('a/1')
    assert len({tube_colour(f'cam/{i}') for i in range(20)}) > 5
    assert render(frame, [], ['x']).sum() == 0
