# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Live evaluation: a bag played into a real stal_node process over DDS (stal-bag-live)."""

import json
import pathlib
import time

import pytest

pytest.importorskip('rclpy', reason='live evaluation needs rclpy (scripts/setup_env.sh)')

from stal_ros.bags.cli import main as bag_main  # noqa: E402
from stal_ros.bags.io import BagReader  # noqa: E402
from stal_ros.ros.bag_live import clip_warmup, main as live_main  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL = str(REPO / 'models' / 'lite_dis.pt')


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Write two 40-frame benchmark test videos as bags, ground truth included."""
    out = tmp_path_factory.mktemp('bags') / 'test'
    assert bag_main(['write', '--split', 'test', '--count', '2', '--out', str(out)]) == 0
    return out


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Return the shipped model and the same weights with the other clip mode (causal / centred).

    A centred model localises each frame once the later ones arrived, so the player must wait
    for an older frame's outputs than the one it just sent.
    """
    from dataclasses import replace

    from stal_ros.net.checkpoint import load_checkpoint, save_checkpoint
    from stal_ros.net.detector import build_model
    shipped = load_checkpoint(MODEL)
    mode = {'causal': 'centred', 'centred': 'causal'}[shipped.config.frames.mode]
    config = replace(shipped.config, frames=replace(shipped.config.frames, mode=mode))
    model = build_model(config)
    model.load_state_dict(shipped.model)
    other = tmp_path_factory.mktemp('models') / f'{mode}.pt'
    save_checkpoint(other, model, config)
    return {'shipped': MODEL, 'other_mode': str(other)}


def _report(folder):
    return json.loads((folder / 'report.json').read_text())


@pytest.mark.ros
@pytest.mark.parametrize('which', ['shipped', 'other_mode'])
def test_live_and_offline_agree_exactly_when_nothing_is_dropped(ros_domain, bags, models, which,
                                                                tmp_path):
    model = models[which]
    assert bag_main(['eval', str(bags), '--model', model, '--out', str(tmp_path / 'offline'),
                     '--no-progress']) == 0
    began = time.monotonic()
    assert live_main([str(bags), '--launch-node', model, '--lockstep', '--out',
                      str(tmp_path / 'live'), '--record', str(tmp_path / 'rec')]) == 0
    # Lockstep waits for the frame the model can localise, not for a timeout per frame.
    assert time.monotonic() - began < 120
    offline, live = _report(tmp_path / 'offline'), _report(tmp_path / 'live')
    assert live['mode'] == 'live' and live['frames_dropped'] == 0
    # A K-frame clip leaves K - 1 frames of each 40-frame bag without output.
    unlocalised = clip_warmup(model)
    assert live['frames_sent'] == 80 and live['frames_published'] == 80 - 2 * unlocalised == \
        offline['frames_published']
    for key in ('frame_map', 'video_map', 'frame_classes', 'video_classes_0.5', 'num_tubes'):
        assert live[key] == offline[key], key
    # The recorded outputs are a bag with the node's messages and the ground truth.
    with BagReader(tmp_path / 'rec' / 'test_000000') as bag:
        assert bag.count('/detections') == bag.count('/tubes') == 40 - unlocalised
        assert bag.count('/ground_truth/tubes') == 40


@pytest.mark.ros
def test_frames_dropped_by_a_node_that_cannot_keep_up_are_counted(ros_domain, bags, tmp_path):
    # 50x the recorded 10 Hz: one frame every 2 ms, far faster than the model on a CPU.
    assert live_main([str(bags / 'test_000000'), '--launch-node', MODEL, '--rate', '50',
                      '--out', str(tmp_path / 'live')]) == 0
    live = _report(tmp_path / 'live')
    assert live['frames_sent'] == 40
    assert live['frames_dropped'] > 0
    assert live['frames_published'] + live['frames_dropped'] + clip_warmup(MODEL) == 40
    assert 0.0 <= live['frame_map'] <= 1.0


@pytest.mark.ros
def test_a_compressed_camera_is_played_and_scored_like_offline(ros_domain, tmp_path):
    """A JPEG camera: the player publishes CompressedImage and starts the node to take it."""
    bags = tmp_path / 'bags'
    assert bag_main(['write', '--split', 'test', '--count', '1', '--compressed', '--out',
                     str(bags)]) == 0
    assert bag_main(['eval', str(bags), '--model', MODEL, '--out', str(tmp_path / 'offline'),
                     '--no-progress']) == 0
    assert live_main([str(bags), '--launch-node', MODEL, '--lockstep', '--out',
                      str(tmp_path / 'live')]) == 0
    offline, live = _report(tmp_path / 'offline'), _report(tmp_path / 'live')
    assert live['frames_published'] == 40 - clip_warmup(MODEL) and live['frames_dropped'] == 0
    for key in ('frame_map', 'video_map', 'frame_classes'):
        assert live[key] == offline[key], key
