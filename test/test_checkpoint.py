# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Checkpoints: round trip, config-only rebuild, clear errors for wrong or damaged files."""

import pytest
import torch

from stal_ros.config import DetectorConfig
from stal_ros.net.checkpoint import (CheckpointError, FORMAT, load_checkpoint, load_state,
                                     save_checkpoint)
from stal_ros.net.detector import build_detector, build_model

BASE = {'input_size': 32, 'class_names': ['wave', 'walk'], 'device': 'cpu',
        'backbone': {'kind': 'lite', 'width': 0.25, 'batch_norm': True},
        'flow': {'kind': 'pwc', 'input_size': [64, 64], 'pyramid_channels': [4, 6, 8],
                 'search_range': 2}}


def config(**changes):
    data = dict(BASE)
    data.update(changes)
    return DetectorConfig.from_dict(data)


def _trained_model(cfg):
    """Return a model whose weights and batch-norm statistics differ from a fresh build."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model(torch.rand(2, 3, 3, 32, 32))                 # updates running statistics
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    cfg = config(fusion={'kind': 'stfp'}, postprocess={'top_k': 7})
    model = _trained_model(cfg)
    path = save_checkpoint(tmp_path / 'model.pt', model, cfg, iteration=1200,
                           recipe={'lr': 1e-3}, note='test')
    loaded = load_checkpoint(path)
    assert loaded.config == cfg
    assert loaded.meta == {'iteration': 1200, 'recipe': {'lr': 1e-3}, 'note': 'test'}
    torch.manual_seed(1)                                    # a different random init
    rebuilt = build_detector(checkpoint=path)               # config from the checkpoint only
    assert rebuilt.postprocess.top_k == 7 and rebuilt.config == cfg
    clip = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        a, b = model(clip), rebuilt.model(clip)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.conf, b.conf)
    fresh = build_model(cfg).eval()
    with torch.no_grad():
        assert not torch.equal(fresh(clip).conf, a.conf)
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == FORMAT and raw['version'] == 2
    assert raw['config']['fusion'] == {'kind': 'stfp'}


def test_explicit_config_may_change_runtime_fields_only(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    runtime = config(postprocess={'score_threshold': 0.3}, precision='bf16',
                     channels_last=True, flow=dict(BASE['flow'], loss_weights=[1.0, 0.5]))
    detector = build_detector(runtime, checkpoint=path)
    assert detector.postprocess.score_threshold == 0.3 and detector.precision == 'bf16'


@pytest.mark.parametrize('change, named', [
    ({'input_size': 64}, 'detector.input_size: checkpoint 32 vs given 64'),
    ({'frames': {'mode': 'centred'}}, "detector.frames.mode: checkpoint 'causal' vs given "
                                      "'centred'"),
    ({'rgb_mean': [0.5, 0.5, 0.5]}, 'detector.rgb_mean: checkpoint (0.485, 0.456, 0.406)'),
    ({'rgb_std': [0.5, 0.5, 0.5]}, 'detector.rgb_std'),
    ({'head': {'scales': [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.1]}}, 'detector.head.scales'),
    ({'head': {'variances': [0.2, 0.2]}}, 'detector.head.variances'),
    ({'head': {'clip_priors': False}}, 'detector.head.clip_priors'),
    ({'class_names': ['walk', 'wave']}, 'detector.class_names'),
    ({'flow': dict(BASE['flow'], input_size=[128, 128])}, 'detector.flow.input_size'),
])
def test_explicit_config_that_changes_what_weights_mean_is_refused(tmp_path, change, named):
    """Refuse a config that changes what the weights mean, naming both values.

    Weights fit the shapes of another input size, frames mode, mean/std or priors, but mean
    something else there.
    """
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    with pytest.raises(CheckpointError, match='differs from the one the weights were trained '
                                              'with') as info:
        build_detector(config(**change), checkpoint=path)
    assert named in str(info.value)


def test_mismatched_state_lists_keys_and_shapes(tmp_path):
    cfg = config()
    state = _trained_model(cfg).state_dict()
    with pytest.raises(CheckpointError) as info:
        load_state(build_model(config(class_names=['a', 'b', 'c'])), state, 'other')
    message = str(info.value)
    assert 'shape mismatch' in message and 'head.conf.0.weight' in message
    assert 'checkpoint (18, 64, 3, 3) vs model (24, 64, 3, 3)' in message
    with pytest.raises(CheckpointError) as info:
        load_state(build_model(config(fusion={'kind': 'sum'})), state, 'other')
    # Same 1x1 convs, but M-Concat's take 2C inputs.
    assert ('fusion.convs.0.weight: checkpoint (32, 64, 1, 1) vs model (32, 32, 1, 1)'
            in str(info.value))
    with pytest.raises(CheckpointError) as info:
        load_state(build_model(config(fusion={'kind': 'stfp'})), state, 'other')
    message = str(info.value)
    assert '10 missing key(s): fusion.laterals.0.bias' in message
    assert '12 unexpected key(s): fusion.convs.0.bias' in message
    with pytest.raises(CheckpointError) as info:
        load_state(build_model(config(fusion={'kind': 'none'})), state, 'other')
    assert 'unexpected key(s)' in str(info.value) and 'motion.' in str(info.value)
    pwc_free = build_model(config(flow=dict(BASE['flow'], kind='dis')))
    with pytest.raises(CheckpointError, match=r'unexpected key\(s\): motion\.flow_subnet'):
        load_state(pwc_free, state, 'other')
    with pytest.raises(CheckpointError, match=r'missing key\(s\): .*motion\.flow_subnet'):
        load_state(build_model(cfg), pwc_free.state_dict(), 'other')


def test_corrupted_and_foreign_files(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    data = path.read_bytes()
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated.pt.*cannot be read'):
        load_checkpoint(truncated)
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='notes.txt.*cannot be read'):
        build_detector(checkpoint=text)
    foreign = tmp_path / 'foreign.pt'
    torch.save({'state_dict': {}}, foreign)
    with pytest.raises(CheckpointError, match="expected format 'stal_ros.checkpoint', got None"):
        load_checkpoint(foreign)
    tensor_file = tmp_path / 'tensor.pt'
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(CheckpointError, match="got 'Tensor'"):
        load_checkpoint(tensor_file)
    with pytest.raises(CheckpointError, match='expected an existing file'):
        load_checkpoint(tmp_path / 'missing.pt')


def test_bad_version_or_config_inside(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    raw = torch.load(path, weights_only=True)
    raw['version'] = 7
    torch.save(raw, tmp_path / 'v7.pt')
    with pytest.raises(CheckpointError, match='expected version 2, got 7'):
        load_checkpoint(tmp_path / 'v7.pt')
    raw['version'] = 1
    torch.save(raw, tmp_path / 'v1.pt')
    with pytest.raises(CheckpointError, match='version 1 mixed the RGB and flow batch-norm'):
        load_checkpoint(tmp_path / 'v1.pt')
    raw['version'] = 2
    raw['config']['fusion'] = {'kind': 'max'}
    torch.save(raw, tmp_path / 'badcfg.pt')
    with pytest.raises(CheckpointError, match=r'invalid config: detector\.fusion\.kind'):
        load_checkpoint(tmp_path / 'badcfg.pt')


class _Opaque:
    pass


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg, payload=_Opaque())
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(path)
    with pytest.raises(TypeError, match='expected a DetectorConfig'):
        save_checkpoint(tmp_path / 'x.pt', build_model(cfg), cfg.to_dict())
