# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Widening a trained lite detector (stal_ros.net.widen): the wider model computes the same."""

import pytest
from test_training import TINY_RUN
import torch

from stal_ros.config import ConfigError, DetectorConfig
from stal_ros.net.checkpoint import load_checkpoint
from stal_ros.net.detector import build_model
from stal_ros.net.stream_norm import StreamBatchNorm2d
from stal_ros.net.widen import widen_width
from stal_ros.train import load_recipe, train


def _config(width, fusion='concat', kind='lite', size=64):
    return DetectorConfig.from_dict({
        'input_size': size, 'frames': {'num_frames': 3},
        'backbone': {'kind': kind, 'width': width, 'batch_norm': True},
        'flow': {'kind': 'dis', 'input_size': [64, 64]}, 'fusion': {'kind': fusion}})


def _trained(width, fusion):
    """Return a model whose weights and batch-norm statistics are all non-trivial."""
    torch.manual_seed(0)
    model = build_model(_config(width, fusion))
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith('running_var'):
                    tensor.uniform_(0.5, 2.0)
                else:
                    tensor.add_(torch.randn_like(tensor) * 0.1)
    return model.eval()


def _outputs(model, clip):
    with torch.no_grad():
        out = model.eval()(clip)
    return out.loc, out.conf


@pytest.mark.parametrize('fusion', ['concat', 'sum', 'average', 'stfp', 'none'])
def test_a_widened_model_computes_what_the_narrow_one_did(fusion):
    narrow = _trained(0.25, fusion)
    wide = build_model(_config(0.5, fusion))
    state = widen_width(narrow.state_dict(), wide, seed=3, noise=0.0)
    wide.load_state_dict(state)
    clip = torch.rand(2, 3, 3, 64, 64)
    for got, want in zip(_outputs(wide, clip), _outputs(narrow, clip)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # It is wider: the first map doubled its channels, and some copies were drawn twice or
    # more (shares that differ), so the test is not passing on an identity.
    stem = state['backbone.stem.0.weight']
    assert stem.shape[0] == 2 * narrow.state_dict()['backbone.stem.0.weight'].shape[0]
    norms = [m for m in wide.backbone.modules() if isinstance(m, StreamBatchNorm2d)]
    assert (len(norms) > 0) == (fusion != 'none')


def test_noise_makes_the_copies_differ_and_keeps_the_outputs_close():
    narrow = _trained(0.25, 'concat')
    wide = build_model(_config(0.5, 'concat'))
    state = widen_width(narrow.state_dict(), wide, seed=3, noise=0.01)
    again = widen_width(narrow.state_dict(), wide, seed=3, noise=0.01)
    assert all(torch.equal(state[k], again[k]) for k in state)          # seeded
    old = narrow.state_dict()['backbone.stem.0.weight']                 # (4, 3, 3, 3)
    new = state['backbone.stem.0.weight']                               # (8, 3, 3, 3)
    torch.testing.assert_close(new[:old.shape[0]], old)                 # kept as trained
    for copy in new[old.shape[0]:]:                                     # near one, equal none
        distance = (old - copy).flatten(1).norm(dim=1)
        assert distance.min() > 0 and distance.min() < 0.1 * old.flatten(1).norm(dim=1).min()
    wide.load_state_dict(state)
    clip = torch.rand(2, 3, 3, 64, 64)
    got, want = _outputs(wide, clip)[1], _outputs(narrow, clip)[1]
    assert not torch.equal(got, want)
    assert (got - want).abs().max() < 0.1 * want.abs().max()


def test_a_narrower_or_unsupported_model_is_refused_naming_the_width():
    narrow = _trained(0.5, 'concat')
    with pytest.raises(ConfigError, match=r'detector.backbone.width: .*widened, not narrowed'):
        widen_width(narrow.state_dict(), build_model(_config(0.25, 'concat')))
    vgg = build_model(_config(0.25, 'concat', kind='vgg16_rfb', size=300))
    with pytest.raises(ConfigError, match=r'detector.backbone.width: .*lite backbone only'):
        widen_width(narrow.state_dict(), vgg)
    same = narrow.state_dict()
    assert widen_width(same, build_model(_config(0.5, 'concat'))) is same


def test_training_starts_from_a_narrower_model(tmp_path):
    """train.init_from with a larger detector.backbone.width: the run widens the weights."""
    narrow = load_recipe(None, TINY_RUN + ['train.iterations=2'])
    path = train(narrow, tmp_path / 'narrow', progress=False)
    wide = load_recipe(None, TINY_RUN + ['train.iterations=2', 'detector.backbone.width=0.5',
                                         f'train.init_from={path}'])
    out = train(wide, tmp_path / 'wide', progress=False)
    checkpoint = load_checkpoint(out)
    assert checkpoint.config.backbone.width == 0.5
    assert checkpoint.model['backbone.stem.0.weight'].shape[0] == \
        2 * load_checkpoint(path).model['backbone.stem.0.weight'].shape[0]
