# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Checkpoints: round trip, config-only rebuild, clear errors for wrong or damaged files."""

import pytest
import torch

from stal_ros.config import DetectorConfig
from stal_ros.net.checkpoint import (CheckpointError, FORMAT, load_checkpoint, load_state,
                                     save_checkpoint)
from stal_ros.net.detector import build_detector

BASE = {'input_size': 32, 'class_names': ['wave', 'walk'], 'device': 'cpu',
        'backbone': {'kind': 'lite', 'width': 0.25},
        'flow': {'kind': 'pwc', 'input_size': [64, 64], 'pyramid_channels': [4, 6, 8],
                 'search_range': 2}}


def config(**changes):
    data = dict(BASE)
    data.update(changes)
    return DetectorConfig.from_dict(data)


def _trained_model(cfg):
    """Return a model whose weights and batch-norm statistics differ from a fresh build."""
    torch.manual_seed(0)
    model = build_detector(cfg).train()
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
    assert rebuilt.postprocess_config.top_k == 7
    clip = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        a, b = model(clip), rebuilt(clip)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.conf, b.conf)
    fresh = build_detector(cfg)
    with torch.no_grad():
        assert not torch.equal(fresh(clip).conf, a.conf)
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == FORMAT and raw['version'] == 1
    assert raw['config']['fusion'] == {'kind': 'stfp'}


def test_explicit_config_overrides_runtime_fields(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    model = build_detector(config(postprocess={'score_threshold': 0.3}), checkpoint=path)
    assert model.postprocess_config.score_threshold == 0.3


def test_mismatched_checkpoint_lists_keys_and_shapes(tmp_path):
    cfg = config()
    path = save_checkpoint(tmp_path / 'm.pt', _trained_model(cfg), cfg)
    with pytest.raises(CheckpointError) as info:
        build_detector(config(class_names=['a', 'b', 'c']), checkpoint=path)
    message = str(info.value)
    assert 'shape mismatch' in message and 'head.conf.0.weight' in message
    assert 'checkpoint (18, 64, 3, 3) vs model (24, 64, 3, 3)' in message
    with pytest.raises(CheckpointError) as info:
        build_detector(config(fusion={'kind': 'sum'}), checkpoint=path)
    # Same 1x1 convs, but M-Concat's take 2C inputs.
    assert ('fusion.convs.0.weight: checkpoint (32, 64, 1, 1) vs model (32, 32, 1, 1)'
            in str(info.value))
    with pytest.raises(CheckpointError) as info:
        build_detector(config(fusion={'kind': 'stfp'}), checkpoint=path)
    message = str(info.value)
    assert '10 missing key(s): fusion.laterals.0.bias' in message
    assert '12 unexpected key(s): fusion.convs.0.bias' in message
    with pytest.raises(CheckpointError) as info:
        build_detector(config(fusion={'kind': 'none'}), checkpoint=path)
    assert 'unexpected key(s)' in str(info.value) and 'motion.' in str(info.value)
    with pytest.raises(CheckpointError) as info:
        build_detector(config(flow=dict(BASE['flow'], kind='dis')), checkpoint=path)
    assert 'unexpected key(s): motion.flow_subnet' in str(info.value)
    pwc_free = build_detector(config(flow=dict(BASE['flow'], kind='dis')))
    with pytest.raises(CheckpointError, match=r'missing key\(s\): .*motion\.flow_subnet'):
        load_state(build_detector(cfg), pwc_free.state_dict(), 'other')


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
    with pytest.raises(CheckpointError, match='expected version 1, got 7'):
        load_checkpoint(tmp_path / 'v7.pt')
    raw['version'] = 1
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
        save_checkpoint(tmp_path / 'x.pt', build_detector(cfg), cfg.to_dict())
