# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The synthetic motion benchmark: determinism, exact flow, class-free appearance, tubes, files."""

import json

import cv2
import numpy as np
import pytest

from stal_ros.config_base import ConfigError
from stal_ros.data import (ActorTube, CLASS_NAMES, grid_image, ground_truth, make_split,
                           make_video, MotionConfig, MotionVideo, read_split, split_seeds,
                           TIME_REVERSED, write_split)
from stal_ros.data.cli import main, make_main, show_main
from stal_ros.data.io import read_index, video_filename
from stal_ros.data.show import CLASS_COLOURS
from stal_ros.metrics import GroundTruth

SMALL = MotionConfig(height=64, width=64, num_frames=16)
STILL = {'pan_prob': 0.0, 'camera_jitter': 0.0, 'actor_jitter': 0.0, 'occlusion_prob': 0.0}


def _same_video(a: MotionVideo, b: MotionVideo) -> bool:
    return (a.name == b.name and np.array_equal(a.frames, b.frames)
            and np.array_equal(a.flows, b.flows) and np.array_equal(a.flow_valid, b.flow_valid)
            and len(a.tubes) == len(b.tubes)
            and all(x.label == y.label and np.array_equal(x.frames, y.frames)
                    and np.array_equal(x.boxes, y.boxes) for x, y in zip(a.tubes, b.tubes))
            and np.array_equal(a.idle_boxes, b.idle_boxes, equal_nan=True))


def _warp_back(video: MotionVideo, t: int) -> np.ndarray:
    """Frame t + 1 sampled at p + flow(p): (H, W, 3) float32, should equal frame t."""
    h, w = video.frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = video.flows[t]
    return cv2.remap(video.frames[t + 1].astype(np.float32), xx + flow[..., 0],
                     yy + flow[..., 1], cv2.INTER_LINEAR)


def test_deterministic_by_seed():
    a, b = make_video(7, SMALL), make_video(7, SMALL)
    assert _same_video(a, b)
    c = make_video(8, SMALL)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (16, 64, 64, 3) and a.frames.dtype == np.uint8
    assert a.flows.shape == (15, 64, 64, 2) and a.flows.dtype == np.float32
    assert a.flow_valid.shape == (15, 64, 64) and a.flow_valid.dtype == bool


def test_any_resolution():
    cfg = MotionConfig(height=48, width=80, num_frames=10)
    for seed in range(3):
        video = make_video(seed, cfg)
        assert video.frames.shape == (10, 48, 80, 3)
        assert video.flows.shape == (9, 48, 80, 2)
        for tube in video.tubes:
            assert np.all(tube.boxes >= 0)
            assert np.all(tube.boxes[:, [0, 2]] <= 80) and np.all(tube.boxes[:, [1, 3]] <= 48)


def test_flow_is_photometrically_exact():
    warp_err, raw_err, warp_moving, valid_frac = [], [], [], []
    for seed in range(6):
        video = make_video(seed, SMALL)
        for t in range(video.num_frames - 1):
            valid = video.flow_valid[t]
            err = np.abs(_warp_back(video, t) - video.frames[t]).mean(-1)
            raw = np.abs(video.frames[t + 1].astype(np.float32) - video.frames[t]).mean(-1)
            moving = valid & (np.linalg.norm(video.flows[t], axis=-1) > 1.0)
            warp_err.append(err[valid].mean())
            valid_frac.append(valid.mean())
            if moving.sum() > 20:
                raw_err.append(raw[moving].mean())
                warp_moving.append(err[moving].mean())
    # Measured: about 0.5 grey levels on valid pixels (bilinear resampling + uint8 rounding).
    assert np.mean(warp_err) < 1.0, np.mean(warp_err)
    assert np.max(warp_err) < 2.5, np.max(warp_err)
    assert np.mean(valid_frac) > 0.8
    assert len(raw_err) > 10
    # Without the flow, moving pixels differ by ~10 grey levels: the flow explains them.
    assert np.mean(raw_err) > 5 * np.mean(warp_moving), (np.mean(raw_err), np.mean(warp_moving))


def test_flow_valid_excludes_what_cannot_match():
    video = make_video(3, SMALL)
    h, w = video.frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    target_x = xx + video.flows[..., 0]
    target_y = yy + video.flows[..., 1]
    inside = (target_x >= 0) & (target_x <= w - 1) & (target_y >= 0) & (target_y <= h - 1)
    assert not np.any(video.flow_valid & ~inside)
    assert np.any(~video.flow_valid & inside)  # occlusion boundaries and blended edges


def _divergence(flow: np.ndarray, mask: np.ndarray) -> float | None:
    """Trace of the affine flow fitted where ``mask`` (the actor's own, exactly affine, flow)."""
    ys, xs = np.nonzero(mask)
    if ys.size < 6:
        return None
    design = np.stack([xs, ys, np.ones_like(xs)], 1).astype(np.float64)
    coef = np.linalg.lstsq(design, flow[ys, xs].astype(np.float64), rcond=None)[0]
    return float(coef[0, 0] + coef[1, 1])


def _appearance(videos: list[MotionVideo]) -> np.ndarray:
    """Per tube frame: box width, height, centre x, centre y, mean colour in the box."""
    rows = []
    for video in videos:
        for tube in video.tubes:
            for t, (x1, y1, x2, y2) in zip(tube.frames, tube.boxes):
                crop = video.frames[t, int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))]
                rows.append([x2 - x1, y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2,
                             crop.reshape(-1, 3).mean(0).mean()])
    return np.array(rows)


def _motion(videos: list[MotionVideo], pair: tuple[str, str]) -> float:
    """Mean over tube frames of the actor's divergence (scale, squash) or relative x flow."""
    values = []
    for video in videos:
        for tube in video.tubes:
            for t, box in zip(tube.frames[:-1], tube.boxes[:-1]):
                x1, y1 = np.floor(box[:2]).astype(int)
                x2, y2 = np.ceil(box[2:]).astype(int)
                flow = video.flows[t]
                if pair[0] == 'walk_right':
                    rel = flow[..., 0] - np.median(flow[..., 0])
                    values.append(rel[y1:y2, x1:x2].mean())
                else:  # the actor's pixels: valid and moving unlike the background
                    background = np.median(flow.reshape(-1, 2), 0)
                    mask = video.flow_valid[t] & (np.abs(flow - background).max(-1) > 0.05)
                    mask[:y1] = mask[y2:] = False
                    mask[:, :x1] = mask[:, x2:] = False
                    div = _divergence(flow, mask)
                    if div is not None:
                        values.append(div)
    return float(np.mean(values))


@pytest.mark.parametrize('pair', TIME_REVERSED)
def test_time_reversed_pairs_look_alike_but_move_apart(pair):
    def videos(name):
        cfg = MotionConfig(height=64, width=64, num_frames=20, min_actors=1, max_actors=1,
                           classes=(name,), occlusion_prob=0.0)
        return [make_video(seed, cfg) for seed in range(30)]

    forward, backward = videos(pair[0]), videos(pair[1])
    a, b = _appearance(forward), _appearance(backward)
    assert len(a) > 100 and abs(len(a) - len(b)) < 0.1 * len(a)
    # Box sizes and positions: the same trajectories played backwards, same distribution.
    for k, name in enumerate(('width', 'height', 'centre x', 'centre y')):
        assert abs(a[:, k].mean() - b[:, k].mean()) < 0.05 * a[:, k].mean() + 0.5, name
        assert abs(a[:, k].std() - b[:, k].std()) < 0.1 * a[:, k].std() + 0.5, name
    assert abs(a[:, 4].mean() - b[:, 4].mean()) < 3.0  # mean grey level inside the boxes
    # The motion tells them apart: right vs left, growth vs shrinkage.
    sign = {'walk_right': 1.0, 'approach': 1.0, 'sit_down': -1.0}[pair[0]]
    fwd, bwd = sign * _motion(forward, pair), sign * _motion(backward, pair)
    assert fwd > 0.01 and bwd < -0.01, (fwd, bwd)


def test_appearance_does_not_depend_on_the_class():
    """Same seed, two classes: the idle first frame before any action shows the same actor."""
    cfg = dict(height=64, width=64, num_frames=12, min_actors=1, max_actors=1, **STILL)
    walk = make_video(4, MotionConfig(classes=('walk_right',), **cfg))
    spin = make_video(4, MotionConfig(classes=('rotate',), **cfg))
    # Different trajectories, but the background and the actor's texture are the same: the
    # colour histograms of whole videos agree far better than those of another seed.
    other = make_video(5, MotionConfig(classes=('rotate',), **cfg))

    def hist(v):
        return np.bincount(v.frames.reshape(-1), minlength=256) / v.frames.size

    assert np.abs(hist(walk) - hist(spin)).sum() < 0.5 * np.abs(hist(walk) - hist(other)).sum()


def test_class_balance_over_a_split():
    cfg = MotionConfig(height=32, width=32, num_frames=12)
    labels = [t.label for v in make_split('val', 240, cfg) for t in v.tubes]
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    assert counts.sum() > 300
    assert counts.min() > 0.6 * counts.mean() and counts.max() < 1.4 * counts.mean(), counts


def test_tubes_are_contiguous_inside_and_cover_only_acting_frames():
    for video in make_split('test', 12, SMALL):
        for tube in video.tubes:
            assert np.all(np.diff(tube.frames) == 1)
            assert tube.boxes.dtype == np.float32 and tube.boxes.shape == (tube.frames.size, 4)
            assert np.all(tube.boxes[:, 2:] > tube.boxes[:, :2])
            assert np.all(tube.boxes >= 0) and np.all(tube.boxes <= 64)
    # A single actor under a still camera: nothing moves outside its tube, it moves inside.
    for name in CLASS_NAMES:
        cfg = MotionConfig(height=64, width=64, num_frames=40, min_actors=1, max_actors=1,
                           classes=(name,), **STILL)
        for seed in range(2):
            video = make_video(seed, cfg)
            assert len(video.tubes) == 1, name
            tube = video.tubes[0]
            assert tube.label == CLASS_NAMES.index(name)
            first, last = tube.frames[0], tube.frames[-1]
            moving = np.abs(video.flows).reshape(video.num_frames - 1, -1).max(1) > 1e-4
            assert not moving[:first].any() and not moving[last + 1:].any(), name
            assert moving[first:last].mean() > 0.8, name  # jump: the apex may pause
            assert tube.frames.size >= 2


def test_idle_actors_are_never_labelled():
    cfg = MotionConfig(height=64, width=64, num_frames=16, min_actors=3, max_actors=3,
                       idle_actor_prob=1.0)
    seen_idle = 0
    for seed in range(6):
        video = make_video(seed, cfg)
        assert len(video.tubes) <= 1  # only the first actor acts
        assert video.idle_boxes.shape == (2, 16, 4)
        seen_idle += int(np.isfinite(video.idle_boxes[..., 0]).sum())
    assert seen_idle > 0
    busy = make_video(0, MotionConfig(height=64, width=64, num_frames=16, min_actors=3,
                                      max_actors=3, idle_actor_prob=0.0))
    assert busy.idle_boxes.shape == (0, 16, 4) and len(busy.tubes) >= 2


def test_split_seeds_are_disjoint_and_stable():
    seeds = {s: split_seeds(s, 2000) for s in ('train', 'val', 'test')}
    assert all(len(set(v)) == 2000 for v in seeds.values())
    assert not set(seeds['train']) & set(seeds['val'])
    assert not set(seeds['train']) & set(seeds['test'])
    assert not set(seeds['val']) & set(seeds['test'])
    assert split_seeds('test', 3) == seeds['test'][:3]
    with pytest.raises(ValueError, match='split'):
        split_seeds('dev', 3)
    videos = make_split('test', 2, MotionConfig(height=32, width=32, num_frames=4))
    assert [v.name for v in videos] == ['test/000000', 'test/000001']
    assert [v.seed for v in videos] == seeds['test'][:2]


def test_config_is_checked():
    with pytest.raises(ConfigError, match='max_actors'):
        MotionConfig(min_actors=3, max_actors=2)
    with pytest.raises(ConfigError, match='classes'):
        MotionConfig(classes=('fly',))
    with pytest.raises(ConfigError, match='height'):
        MotionConfig(height=8)
    with pytest.raises(ValueError, match='seed'):
        make_video(-1)


def test_write_read_round_trip(tmp_path):
    cfg = MotionConfig(height=32, width=40, num_frames=8, min_actors=3, max_actors=3)
    videos = make_split('val', 3, cfg)
    index = write_split(tmp_path, videos, cfg)
    back = read_split(tmp_path)
    assert len(back) == 3
    for a, b in zip(videos, back):
        assert a.name == b.name and a.seed == b.seed
        assert np.array_equal(a.frames, b.frames)
        assert b.flows.dtype == np.float32
        np.testing.assert_allclose(b.flows, a.flows, rtol=1e-3, atol=1e-3)  # float16
        assert np.array_equal(a.flow_valid, b.flow_valid)
        assert np.array_equal(a.idle_boxes, b.idle_boxes, equal_nan=True)
        assert len(a.tubes) == len(b.tubes)
        for x, y in zip(a.tubes, b.tubes):
            assert x.label == y.label and np.array_equal(x.frames, y.frames)
            assert np.array_equal(x.boxes, y.boxes)
    meta = json.loads(index.read_text())
    assert meta['names'] == [v.name for v in videos]
    assert meta['seeds'] == [v.seed for v in videos]
    assert meta['class_names'] == list(CLASS_NAMES)
    assert MotionConfig.from_dict(meta['config']) == cfg
    assert not [p for p in tmp_path.iterdir() if '.tmp' in p.name]  # no temporary leftovers


def test_read_errors_name_the_file(tmp_path):
    videos = make_split('val', 2, MotionConfig(height=32, width=32, num_frames=4))
    write_split(tmp_path, videos)
    second = tmp_path / video_filename(videos[1].name)
    data = second.read_bytes()
    second.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=second.name):
        read_split(tmp_path)
    second.unlink()
    with pytest.raises(FileNotFoundError, match=second.name):
        read_split(tmp_path)
    (tmp_path / 'index.json').unlink()
    with pytest.raises(FileNotFoundError, match='index.json'):
        read_index(tmp_path)


def test_grid_image_draws_boxes_and_labels():
    cfg = MotionConfig(height=64, width=64, num_frames=12, min_actors=1, max_actors=1,
                       classes=('approach',), **STILL)
    video = make_video(2, cfg)
    tube = video.tubes[0]
    grid = grid_image([video, make_video(3, SMALL)], frames_per_video=3, scale=2)
    assert grid.shape == (2 * 128, 3 * (128 + 64), 3) and grid.dtype == np.uint8
    # A frame of the tube: sample it as the only frame of a one-column grid, then look at the
    # box's bottom-right corner, which no label covers.
    t = int(tube.frames[len(tube.frames) // 2])
    box = tube.boxes[[t - tube.frames[0]]]
    single = MotionVideo(video.name, video.frames[t:t + 2], video.flows[t:t + 1],
                         video.flow_valid[t:t + 1], (ActorTube(tube.label, np.array([0]), box),))
    cell = grid_image([single], frames_per_video=1, scale=2)
    x2, y2 = (int(round(float(v) * 2)) - 1 for v in single.tubes[0].boxes[0, 2:])
    assert tuple(cell[y2, x2]) == CLASS_COLOURS[tube.label]
    plain = cv2.resize(single.frames[0], (128, 128), interpolation=cv2.INTER_NEAREST)
    assert np.any(cell[:, :128] != plain)  # boxes and labels drawn
    assert np.any(cell[:64, 128:] != 24)  # flow thumbnail in the panel


def test_ground_truth_matches_the_tubes():
    videos = make_split('test', 4, SMALL)
    gt = ground_truth(videos)
    assert isinstance(gt, GroundTruth)
    assert gt.class_names == CLASS_NAMES and gt.num_classes == len(CLASS_NAMES)
    assert list(gt.videos) == [v.name for v in videos]
    for video in videos:
        annotations = gt.videos[video.name]
        assert annotations.num_frames == video.num_frames
        assert len(annotations.tubes) == len(video.tubes)
        for mine, theirs in zip(video.tubes, annotations.tubes):
            assert theirs.label == mine.label
            assert np.array_equal(theirs.frames, mine.frames)
            np.testing.assert_array_equal(theirs.boxes, mine.boxes)


def test_console_commands(tmp_path):
    out = tmp_path / 'bench'
    size = ['--height', '32', '--width', '32', '--num-frames', '5']
    assert make_main(['--split', 'val', '--count', '2', '--out', str(out)] + size) == 0
    assert [v.name for v in read_split(out)] == ['val/000000', 'val/000001']
    png = tmp_path / 'grid.png'
    assert show_main([str(out), '--out', str(png), '--frames', '2']) == 0
    assert cv2.imread(str(png)).shape == (2 * 256, 2 * (256 + 128), 3)
    assert main(['show', '--split', 'test', '--count', '1', '--out', str(png)] + size) == 0
    assert show_main([str(tmp_path / 'nothing'), '--out', str(png)]) == 1
