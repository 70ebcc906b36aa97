# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Training clips, augmentation, the training command (loss, checkpoint, resume) and evaluation."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from stal_ros.config import AugmentConfig, ConfigError
from stal_ros.data.clips import ClipDataset, collate, mirror_map
from stal_ros.data.motion import CLASS_NAMES, make_split, MotionConfig
from stal_ros.evaluate import main as evaluate_main
from stal_ros.net.checkpoint import load_checkpoint
from stal_ros.net.detector import build_detector, build_model
from stal_ros.train import load_recipe, load_state, train, widen_frames

SMALL = MotionConfig(height=64, width=64, num_frames=12)
TINY_RUN = ['detector.input_size=64', 'detector.backbone.width=0.25',
            'detector.flow.input_size=[64, 64]', 'train.batch_size=4', 'train.workers=0',
            'train.log_every=2', 'train.checkpoint_every=3', 'data.train_videos=4',
            'data.motion.height=64', 'data.motion.width=64', 'data.motion.num_frames=12',
            'optim.warmup_iterations=0']


@pytest.fixture(scope='module')
def videos():
    return make_split('train', 3, SMALL)


def test_clips_hold_the_target_frame_boxes_and_the_flows(videos):
    data = ClipDataset(videos, class_names=CLASS_NAMES, num_frames=3, target_index=2,
                       input_size=32, augment=None)
    assert len(data) == 3 * (12 - 2)
    for i in range(len(data)):
        v, t = data.index[i]
        sample = data[i]
        assert sample.clip.shape == (3, 3, 32, 32) and sample.flows.shape == (2, 2, 32, 32)
        expected = [(tube.label, tube.boxes[list(tube.frames).index(t)])
                    for tube in videos[v].tubes if t in tube.frames]
        assert sorted(sample.labels.tolist()) == sorted(k for k, _ in expected)
        for k, box in expected:
            got = sample.boxes[sample.labels.tolist().index(k)].numpy()
            np.testing.assert_allclose(got, box / 64, atol=1e-6)
        # Flows rescaled with the grid: 64 -> 32 halves the vectors.
        flow = videos[v].flows[t - 1]
        assert abs(sample.flows[1][0].mean().item() - flow[..., 0].mean() / 2) < 0.05
    clips, targets, flows = collate([data[0], data[1]])
    assert clips.shape == (2, 3, 3, 32, 32) and len(targets) == 2 and len(flows) == 2


def test_edge_clips_repeat_the_end_frames_with_zero_flow_between_repeats(videos):
    kw = {'class_names': CLASS_NAMES, 'num_frames': 5, 'target_index': 2, 'input_size': 64,
          'augment': None}
    plain, padded = ClipDataset(videos, **kw), ClipDataset(videos, pad=True, **kw)
    assert len(plain) == 3 * (12 - 4) and len(padded) == 3 * 12
    assert padded.index[:12] == [(0, t) for t in range(12)]
    full = {key: plain[i] for i, key in enumerate(plain.index)}
    for i, (v, t) in enumerate(padded.index):
        sample = padded[i]
        at = np.clip(np.arange(t - 2, t + 3), 0, 11)      # as FrameBuffer pads a stream
        frames = videos[v].frames[at].transpose(0, 3, 1, 2) / 255.0
        np.testing.assert_allclose(sample.clip.numpy(), frames, atol=1e-6)
        for j in range(4):
            want = (np.zeros((64, 64, 2)) if at[j] == at[j + 1]
                    else videos[v].flows[at[j]])
            np.testing.assert_allclose(sample.flows[j].numpy().transpose(1, 2, 0), want,
                                       atol=1e-5)
        assert sorted(sample.labels.tolist()) == sorted(
            tube.label for tube in videos[v].tubes if t in tube.frames)
        if (v, t) in full:                                  # a full clip: the same sample
            np.testing.assert_array_equal(sample.clip.numpy(), full[v, t].clip.numpy())


def test_mirror_swaps_directions_and_flips_the_flow_x_sign(videos):
    names = ('walk_right', 'walk_left', 'run_right', 'jump')
    assert mirror_map(names).tolist() == [1, 0, -1, 3]
    plain = ClipDataset(videos, class_names=CLASS_NAMES, num_frames=3, target_index=2,
                        input_size=64, augment=None)
    mirror_only = AugmentConfig(photometric=0.0, crop_min_scale=1.0, mirror=True,
                                channel_swap=False)
    mirrored = ClipDataset(videos, class_names=CLASS_NAMES, num_frames=3, target_index=2,
                           input_size=64, augment=mirror_only)
    flips = 0
    for i in range(len(plain)):
        a, b = plain[i], mirrored[i]
        if torch.equal(a.clip, b.clip):
            continue
        flips += 1
        torch.testing.assert_close(b.clip, a.clip.flip(-1))
        torch.testing.assert_close(b.flows[:, 0], -a.flows[:, 0].flip(-1))
        torch.testing.assert_close(b.flows[:, 1], a.flows[:, 1].flip(-1))
        torch.testing.assert_close(b.boxes[:, 0], 1 - a.boxes[:, 2])
        swap = mirror_map(CLASS_NAMES)
        assert b.labels.tolist() == swap[a.labels.numpy()].tolist()
    assert flips > 0


def test_augmentation_is_reproducible_and_keeps_boxes_inside(videos):
    data = ClipDataset(videos, class_names=CLASS_NAMES, num_frames=3, target_index=2,
                       input_size=48, augment=AugmentConfig(), seed=3)
    a, b = data[5], data[5]
    assert torch.equal(a.clip, b.clip) and torch.equal(a.boxes, b.boxes)
    data.set_epoch(1)
    assert not torch.equal(data[5].clip, a.clip)
    boxes = 0
    for i in range(len(data)):
        s = data[i]
        assert ((s.boxes >= 0) & (s.boxes <= 1)).all() and s.clip.min() >= 0
        assert (s.boxes[:, 2] >= s.boxes[:, 0]).all() and (s.boxes[:, 3] >= s.boxes[:, 1]).all()
        boxes += len(s.boxes)
    assert boxes > 0


def test_a_few_steps_lower_the_loss_and_write_a_checkpoint_that_rebuilds(tmp_path):
    recipe = load_recipe(None, TINY_RUN + ['train.iterations=12', 'optim.lr=0.003',
                                           'train.log_every=1'])
    path = train(recipe, tmp_path / 'run', progress=False)
    log = [json.loads(line) for line in (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()]
    assert [r['step'] for r in log] == list(range(1, 13))
    # One batch's loss is noisy (fresh augmentations, 4 clips); the trend is not.
    losses = [r['loss'] for r in log]
    assert sum(losses[-4:]) < sum(losses[:4])
    loaded = load_checkpoint(path)                   # torch.load(weights_only=True) inside
    assert loaded.config == recipe.detector and loaded.meta['iterations'] == 12
    detector = build_detector(checkpoint=path)       # rebuilt from its own config
    assert detector.config.input_size == 64 and detector.class_names == CLASS_NAMES
    assert load_recipe(tmp_path / 'run' / 'recipe.yaml') == recipe


def test_resume_continues_at_the_same_step_with_the_same_state(tmp_path):
    recipe = load_recipe(None, TINY_RUN + ['train.iterations=6', 'optim.lr=0.003',
                                           'train.log_every=1'])
    train(recipe, tmp_path / 'full', progress=False)
    full = load_state(tmp_path / 'full' / 'last.pt')
    stopped = tmp_path / 'stopped'
    train(recipe, stopped, progress=False, stop_after=3)
    assert load_state(stopped / 'last.pt')['step'] == 3 and not (stopped / 'model.pt').exists()
    # An interruption after the checkpoint of step 3 but after logging step 4 and 5.
    shutil.copy(stopped / 'last.pt', tmp_path / 'step3.pt')
    train(recipe, stopped, resume=stopped / 'last.pt', progress=False, stop_after=2)
    train(recipe, stopped, resume=tmp_path / 'step3.pt', progress=False)
    end = load_state(stopped / 'last.pt')
    assert end['step'] == 6
    logged, expected = ([json.loads(line) for line in (run / 'log.jsonl').read_text().splitlines()]
                        for run in (stopped, tmp_path / 'full'))
    assert [r['step'] for r in logged] == [1, 2, 3, 4, 5, 6]     # steps 4 and 5 logged once
    for got, want in zip(logged, expected):
        assert got == pytest.approx(want, rel=1e-4)
    for key, value in full['model'].items():
        torch.testing.assert_close(end['model'][key], value, msg=key)
    for a, b in zip(full['optimizer']['state'].values(), end['optimizer']['state'].values()):
        for key in a:
            torch.testing.assert_close(b[key], a[key])
    other = load_recipe(None, TINY_RUN + ['train.iterations=7'])
    with pytest.raises(ValueError, match='another recipe'):
        train(other, tmp_path / 'x', resume=stopped / 'last.pt', progress=False)


def test_weight_averaging_writes_the_mean_of_the_late_weights_and_fresh_bn_statistics(
        tmp_path):
    settings = TINY_RUN + ['train.iterations=5', 'optim.lr=0.003', 'optim.milestones=[]']
    plain = load_recipe(None, settings)
    iterates = {}
    for step in range(1, 6):        # the weights after each step, one step per invocation
        train(plain, tmp_path / 'plain', progress=False, stop_after=1,
              resume=None if step == 1 else tmp_path / 'plain' / 'last.pt')
        iterates[step] = load_state(tmp_path / 'plain' / 'last.pt')['model']
    # Averaging every 2 steps from step 2 (0.4 * 5) on takes steps 2, 4 and the last, 5;
    # interrupted after step 3 (the mean of one) and resumed.
    swa = load_recipe(None, settings + ['train.swa_every=2', 'train.swa_start=0.4',
                                        'train.swa_bn_batches=3'])
    run = tmp_path / 'swa'
    train(swa, run, progress=False, stop_after=3)
    assert not (run / 'model.pt').exists() and load_state(run / 'last.pt')['average']['count'] == 1
    path = train(swa, run, resume=run / 'last.pt', progress=False)
    last, averaged = load_checkpoint(run / 'model_last.pt'), load_checkpoint(path)
    assert averaged.meta['swa'] == {'averaged': 3, 'batch_norm_batches': 3}
    model = build_model(swa.detector)
    params = {name for name, _ in model.named_parameters()}
    norms = [key for key in averaged.model if key.endswith('running_mean')]
    assert norms and params
    for key, value in averaged.model.items():
        torch.testing.assert_close(last.model[key], iterates[5][key], msg=key)
        if key in params:
            mean = (iterates[2][key] + iterates[4][key] + iterates[5][key]) / 3
            torch.testing.assert_close(value, mean, msg=key)
        elif key.endswith('num_batches_tracked'):     # statistics from the 3 batches alone
            assert value.item() == 3, key
    assert any(not torch.allclose(averaged.model[key], last.model[key]) for key in norms)
    detector = build_detector(checkpoint=path)
    assert detector.config == swa.detector


def test_a_model_trained_on_k_frames_starts_a_larger_k_computing_the_same(tmp_path):
    """init_from a K = 3 model into K = 5: the new outer flow pairs start at zero weight."""
    short = load_recipe(None, TINY_RUN + ['train.iterations=2', 'detector.frames.mode=centred'])
    path = train(short, tmp_path / 'k3', progress=False)
    wide = load_recipe(None, TINY_RUN + ['train.iterations=1', 'detector.frames.mode=centred',
                                         'detector.frames.num_frames=5',
                                         f'train.init_from={path}'])
    trained = load_checkpoint(path)
    model = build_model(wide.detector)
    state = widen_frames(trained.model, trained.config, model)
    weight = state['motion.to_image.conv.weight']                  # (3, 8, 1, 1): 4 pairs
    assert weight.shape == (3, 8, 1, 1)
    torch.testing.assert_close(weight[:, 2:6], trained.model['motion.to_image.conv.weight'])
    assert not weight[:, :2].any() and not weight[:, 6:].any()
    model.load_state_dict(state)
    old = build_detector(checkpoint=path).model
    clip = torch.rand(2, 5, 3, 64, 64)
    with torch.no_grad():
        got, want = model.eval()(clip), old.eval()(clip[:, 1:4])  # the same localised frame
    torch.testing.assert_close(got.conf, want.conf)
    torch.testing.assert_close(got.loc, want.loc)
    train(wide, tmp_path / 'k5', progress=False)                   # and the run starts from it
    # A smaller K cannot hold the clip the weights were trained on.
    narrow = load_recipe(None, TINY_RUN + ['detector.frames.num_frames=2',
                                           f'train.init_from={path}'])
    with pytest.raises(ConfigError, match='detector.frames.num_frames = 2: expected a clip'):
        train(narrow, tmp_path / 'k2', progress=False)


def test_bad_recipes_fail_at_start_up_naming_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match='train.iterations = 0: expected a value >= 1'):
        load_recipe(None, ['train.iterations=0'])
    with pytest.raises(ConfigError, match=r'detector.class_names'):
        load_recipe(None, ['detector.class_names=[a, b]'])
    # The lite backbone at 64 px has a 1x1 map: a batch of one clip cannot train.
    recipe = load_recipe(None, TINY_RUN + ['train.batch_size=1', 'train.iterations=1'])
    with pytest.raises(ConfigError, match='train.batch_size = 1: expected at least 2'):
        train(recipe, tmp_path / 'b1', progress=False)


def test_evaluation_report_holds_the_numbers_it_prints(tmp_path, capsys):
    recipe = load_recipe(None, TINY_RUN + ['train.iterations=2'])
    path = train(recipe, tmp_path / 'run', progress=False)
    out = tmp_path / 'eval'
    assert evaluate_main(['--model', str(path), '--count', '2', '--size', '64',
                          '--out', str(out), '--bootstrap', '7']) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / 'report.json').read_text())
    spread = report['bootstrap']
    assert spread['draws'] == 7 and spread['frame_map']['value'] == report['frame_map']
    assert spread['video_map_0.5']['value'] == report['video_map']['0.5']
    assert (f"frame-mAP sd {spread['frame_map']['sd']:.4f}, 95 % interval "
            f"{spread['frame_map']['low']:.4f}-{spread['frame_map']['high']:.4f}") in printed
    assert report['video_size'] == 64 and report['num_frames'] == 2 * 40
    assert f"frame-mAP@0.5 {report['frame_map']:.4f}" in printed
    assert f"@0.5 {report['video_map']['0.5']:.4f}" in printed
    assert len(report['sha256']) == 64 and report['config']['input_size'] == 64
    assert report['num_videos'] == 2 and report['flow_epe'] is not None
    # The confusion counts every true box once, in its own class's row.
    assert 'Frame confusion (IoU >= 0.5)' in printed
    for row in report['frame_classes']:
        assert sum(report['frame_confusion'][row['class']].values()) == row['num_gt']
    assert (out / 'pr_curves.png').stat().st_size > 10_000
    with pytest.raises(SystemExit):
        evaluate_main(['--model', str(path), '--size', '8'])
    assert '--size 8: expected at least 16 pixels' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_main(['--model', str(path), '--bootstrap', '-1'])
    assert '--bootstrap -1: expected 0 (none) or more draws' in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_ddp_gives_the_weights_of_one_process(tmp_path):
    """Two CPU processes under torchrun (gloo) give the weights of one process on the same data.

    Each process takes every second clip of the seeded permutation, so a step sees the same
    global batch; the loss is normalised by the global positives.  Batch norm statistics are
    per process (no SyncBatchNorm), so this runs the lite backbone without batch norm.
    """
    settings = TINY_RUN + ['train.iterations=3', 'detector.backbone.batch_norm=false',
                           'optim.lr=0.003']
    single = train(load_recipe(None, settings), tmp_path / 'one', progress=False)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2', '-m', 'stal_ros.train', '--out', str(tmp_path / 'two'), '--no-progress',
           '--set', *settings]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 process(es)' in proc.stderr
    a = load_checkpoint(single).model
    b = load_checkpoint(tmp_path / 'two' / 'model.pt').model
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_flow_pretraining_trains_only_the_flow_subnet(tmp_path):
    """A learned flow first trains alone on the exact flow, then the whole detector trains."""
    settings = TINY_RUN + ['detector.flow.kind=pwc', 'detector.flow.pyramid_channels=[4, 8, 8]',
                           'detector.flow.estimator_channels=[8]',
                           'detector.flow.context_channels=[8]',
                           'detector.flow.context_dilations=[1]', 'train.iterations=2',
                           'train.flow_pretrain_iterations=2', 'train.log_every=1']
    recipe = load_recipe(None, settings)
    path = train(recipe, tmp_path / 'run', progress=False)
    log = [json.loads(line) for line in (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()]
    assert all(r['conf'] == 0.0 and r['reg'] == 0.0 and r['flow'] > 0 for r in log)
    torch.manual_seed(recipe.train.seed)                        # train() seeds the same way
    fresh = build_detector(recipe.detector).model.state_dict()
    after = load_checkpoint(path).model
    moved = {k for k in after if not torch.equal(after[k], fresh[k])}
    assert moved and all(k.startswith('motion.flow_subnet.') for k in moved), sorted(moved)[:5]
    with pytest.raises(ConfigError, match='flow_pretrain_iterations = 5: expected 0 for a model '
                                          'without a learned flow'):
        train(load_recipe(None, TINY_RUN + ['train.flow_pretrain_iterations=5']),
              tmp_path / 'x', progress=False)
