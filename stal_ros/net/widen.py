# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Widen a trained lite detector without changing what it computes (Net2WiderNet).

A wider backbone (``detector.backbone.width``) changes the shape of nearly every weight, so
it would train from scratch: hours on a CPU.  ``widen_width`` instead fits the trained
weights to the wider model so that it starts out computing what the trained one did, as
Net2Net's function-preserving widening (Chen, Goodfellow and Shlens, ICLR 2016):

* every channel group (the output channels of one dense conv, carried through the
  depthwise conv and the batch norms that follow it) keeps its trained channels and fills the
  new ones with copies of randomly drawn trained channels (their filters, biases, batch-norm
  weights and per-stream statistics);
* every dense conv that reads a group divides the weights of each trained channel among its
  copies, in random shares that sum to one, so the sum it computes is unchanged.

The copies are exact, so the widened model gives the same output (up to float rounding);
``noise`` then adds a small perturbation to the copies' filters, because otherwise a channel
and its copies see gradients that differ only by a factor (their shares), which AdamW's
per-parameter normalisation turns into identical updates: they would stay copies forever.

Supported: the lite backbone (``detector.backbone.kind: lite``) with every fusion
(concat, sum, average, stfp, none).  The VGG16-RFB backbone's branches are not traced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stal_ros.config import ConfigError
from stal_ros.net.backbone import LiteBackbone
from stal_ros.net.fusion import ConcatFusion, NoFusion, PyramidFusion, SumFusion
from stal_ros.net.stream_norm import StreamBatchNorm2d

WIDTH_PATH = ('detector', 'backbone', 'width')


@dataclass(frozen=True)
class _Use:
    """How one dimension of one tensor depends on a channel group.

    ``role`` 'out': the dimension holds the group's channels (copied).  'in': a dense conv
    reads the group along it (copied, then multiplied by the shares).
    """

    dim: int
    group: tuple[str, ...]     # one group, or the groups concatenated (M-Concat's input)
    role: str


@dataclass
class _Group:
    """A channel group of C_new channels, C_old of them trained.

    ``index`` (C_new,): the trained channel each channel copies; ``share`` (C_new,): its share
    of that channel's outgoing weights; ``fresh`` (C_new,): True for the copies.
    """

    index: torch.Tensor
    share: torch.Tensor
    fresh: torch.Tensor


class _Trace:
    """The tensors of a model that depend on its channel groups, found by walking it."""

    def __init__(self) -> None:
        self.uses: dict[str, list[_Use]] = {}
        self.sources: dict[str, str] = {}      # group -> the weight whose dim 0 defines it

    def add(self, key: str, dim: int, group: tuple[str, ...], role: str) -> None:
        self.uses.setdefault(key, []).append(_Use(dim, group, role))

    def conv(self, prefix: str, conv: nn.Conv2d, current: str | None) -> str | None:
        """Record ``conv`` reading group ``current``; return the group it writes."""
        if conv.groups > 1:                     # depthwise: channel c reads channel c
            if not conv.groups == conv.in_channels == conv.out_channels:
                raise ValueError(f'widen: {prefix} is a grouped conv that is not depthwise')
            out = current
        else:
            if current is not None:
                self.add(f'{prefix}.weight', 1, (current,), 'in')
            out = prefix
            self.sources[out] = f'{prefix}.weight'
        if out is not None:
            self.add(f'{prefix}.weight', 0, (out,), 'out')
            if conv.bias is not None:
                self.add(f'{prefix}.bias', 0, (out,), 'out')
        return out

    def norm(self, prefix: str, norm: nn.Module, current: str) -> None:
        for name in ('weight', 'bias'):
            self.add(f'{prefix}.{name}', 0, (current,), 'out')
        stats_dim = 1 if isinstance(norm, StreamBatchNorm2d) else 0     # (S, C) or (C,)
        for name in ('running_mean', 'running_var'):
            self.add(f'{prefix}.{name}', stats_dim, (current,), 'out')


def _trace(model: nn.Module) -> _Trace:
    """Walk the backbone, the fusion and the head of a ``STALDetector`` in execution order."""
    backbone, fusion = model.backbone, model.fusion
    if not isinstance(backbone, LiteBackbone):
        raise ConfigError(WIDTH_PATH, expectation='widening trained weights (train.init_from) '
                          'supports the lite backbone only (detector.backbone.kind: lite)')
    trace = _Trace()
    current: str | None = None                  # the RGB / flow image: 3 channels, fixed
    maps: list[str] = []
    chunks = [('backbone.stem', backbone.stem), ('backbone.stage16', backbone.stage16)]
    chunks += [(f'backbone.extras.{i}', m) for i, m in enumerate(backbone.extras)]
    for prefix, chunk in chunks:
        for name, module in chunk.named_modules(prefix=prefix):
            if isinstance(module, nn.Conv2d):
                current = trace.conv(name, module, current)
            elif isinstance(module, (nn.BatchNorm2d, StreamBatchNorm2d)):
                trace.norm(name, module, current)
        maps.append(current)
    fused = list(maps)
    if isinstance(fusion, ConcatFusion):
        for level, conv in enumerate(fusion.convs):
            key = f'fusion.convs.{level}'
            trace.add(f'{key}.weight', 1, (maps[level], maps[level]), 'in')
            fused[level] = trace.conv(key, conv, None)
    elif isinstance(fusion, SumFusion):                 # and AverageFusion
        for level, conv in enumerate(fusion.convs):
            fused[level] = trace.conv(f'fusion.convs.{level}', conv, maps[level])
    elif isinstance(fusion, PyramidFusion):
        for level in range(len(fusion.laterals)):      # conv(C_{l+1} -> C_l), added to map l
            key = f'fusion.laterals.{level}'
            trace.add(f'{key}.weight', 1, (maps[level + 1],), 'in')
            trace.add(f'{key}.weight', 0, (maps[level],), 'out')
            trace.add(f'{key}.bias', 0, (maps[level],), 'out')
    elif not isinstance(fusion, NoFusion):
        raise ConfigError(WIDTH_PATH, expectation='widening trained weights (train.init_from) '
                          f'does not know the fusion {type(fusion).__name__}')
    for level, group in enumerate(fused):
        for kind in ('loc', 'conf'):
            trace.add(f'head.{kind}.{level}.weight', 1, (group,), 'in')
    return trace


def _draw(old: int, new: int, generator: torch.Generator) -> _Group:
    """Keep channels 0..old-1, copy random ones into the rest; random shares summing to 1."""
    extra = torch.randint(old, (new - old,), generator=generator)
    index = torch.cat([torch.arange(old), extra])
    weight = 0.5 + torch.rand(new, generator=generator, dtype=torch.float64)   # in [0.5, 1.5)
    total = torch.zeros(old, dtype=torch.float64).index_add_(0, index, weight)
    fresh = torch.arange(new) >= old
    return _Group(index, (weight / total[index]).float(), fresh)


def widen_width(state: dict[str, torch.Tensor], model: nn.Module, seed: int = 0,
                noise: float = 0.01) -> dict[str, torch.Tensor]:
    """Fit the weights of a narrower trained detector to ``model`` (a larger backbone width).

    Args:
        state: the trained model's state dict (the same network at a smaller
            ``detector.backbone.width``).
        model: the ``STALDetector`` to load into.
        seed: draws which channels are copied and their shares.
        noise: standard deviation of the perturbation added to the copies' conv filters,
            relative to each filter tensor's standard deviation (0: exactly the same outputs).

    Returns:
        The state dict to load; ``state`` itself when no tensor's shape differs.

    Raises:
        ConfigError (``detector.backbone.width``): the model is narrower than the weights in
            some group, or not a supported network.
    """
    target = model.state_dict()
    if all(key not in target or target[key].shape == value.shape
           for key, value in state.items()):
        return state
    trace = _trace(model)
    generator = torch.Generator().manual_seed(seed)
    groups: dict[str, _Group] = {}
    for name, key in trace.sources.items():      # in execution order: reproducible draws
        old, new = state[key].shape[0], target[key].shape[0]
        if new < old:
            raise ConfigError(WIDTH_PATH, expectation=f'{key} with at least the {old} output '
                              f"channels of train.init_from's weights, got {new} (a model can "
                              'be widened, not narrowed)')
        groups[name] = _draw(old, new, generator)
    out = dict(state)
    for key, uses in trace.uses.items():
        tensor = state[key]
        fresh = torch.zeros(tensor.shape, dtype=torch.bool)
        for use in uses:
            parts, offset = [], 0
            for name in use.group:              # concatenated groups index one after another
                parts.append((groups[name], offset))
                offset += state[trace.sources[name]].shape[0]
            index = torch.cat([g.index + o for g, o in parts])
            tensor = tensor.index_select(use.dim, index)
            fresh = fresh.index_select(use.dim, index)
            shape = [1] * tensor.dim()
            shape[use.dim] = -1
            if use.role == 'in':
                tensor = tensor * torch.cat([g.share for g, _ in parts]).view(shape)
            else:
                fresh = fresh | torch.cat([g.fresh for g, _ in parts]).view(shape)
        if noise > 0 and key.endswith('weight') and tensor.dim() == 4 and fresh.any():
            scale = noise * float(tensor.std())
            jitter = torch.randn(tensor.shape, generator=generator) * scale
            tensor = torch.where(fresh, tensor + jitter, tensor)
        out[key] = tensor
    wrong = [key for key, value in target.items()
             if key in out and out[key].shape != value.shape]
    if wrong:
        raise ConfigError(WIDTH_PATH, expectation="train.init_from's weights to widen to the "
                          f'model; still mismatched: {wrong[:5]}')
    return out
