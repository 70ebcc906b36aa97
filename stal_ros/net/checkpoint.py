# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Checkpoints: a plain dict with the state dict and the full model config.

Format (version 2), written with ``torch.save`` and read with ``torch.load(weights_only=True)``
so that loading never executes code from the file::

    {'format': 'stal_ros.checkpoint', 'version': 2,
     'model': state_dict, 'config': DetectorConfig.to_dict(), 'meta': {...}}

Version 1 files were written before the shared backbone kept per-stream batch-norm
statistics (its running statistics mix RGB and flow images); they are refused, naming why.

The config is enough to rebuild the model (``detector.build_detector(checkpoint=path)``).
Every failure raises ``CheckpointError`` (a ``ValueError``) naming the file and what was wrong:
not a checkpoint, corrupted, unsupported version, invalid config, or a state dict that does not
fit the model (all missing and unexpected keys and shape mismatches are listed).
"""

from __future__ import annotations

import os
from pathlib import Path
import pickle
from typing import Any, Mapping, NamedTuple
import zipfile

import torch
from torch import nn

from stal_ros.config import ConfigError, DetectorConfig

FORMAT = 'stal_ros.checkpoint'
VERSION = 2
# Settings a checkpoint's weights do not depend on: a config given with the checkpoint may
# change these (and only these).  Everything else (network, input size, frames, mean/std,
# priors, classes, flow) changes what the weights mean, so a difference is an error.
RUNTIME_FIELDS = ('postprocess', 'device', 'precision', 'channels_last', 'flow.loss_weights')
_LIST_LIMIT = 20  # at most this many keys per category in an error message


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint: state dict, rebuilt config and free-form metadata."""

    model: dict[str, torch.Tensor]
    config: DetectorConfig
    meta: dict[str, Any]


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: DetectorConfig,
                    **meta: Any) -> Path:
    """Write ``model``'s state dict and ``config`` to ``path`` (atomically); return the path.

    ``meta`` (e.g. iteration, metrics, recipe) must hold plain Python values (str, numbers,
    bools, None, lists, dicts) or tensors so that it loads with ``weights_only=True``.
    """
    if not isinstance(config, DetectorConfig):
        raise TypeError(f'save_checkpoint: expected a DetectorConfig, got '
                        f'{type(config).__name__}')
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {'format': FORMAT, 'version': VERSION, 'model': state,
               'config': config.to_dict(), 'meta': dict(meta)}
    tmp = path.with_name(path.name + '.tmp')
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike,
                    device: str | torch.device = 'cpu') -> Checkpoint:
    """Read and validate a checkpoint; tensors are mapped to ``device``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path}: expected an existing file, got none')
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'checkpoint {path}: expected a {FORMAT} file saved by '
                              f'save_checkpoint, but it cannot be read (corrupted or not a '
                              f'torch file): {type(exc).__name__}: {exc}') from exc
    if not isinstance(data, Mapping) or data.get('format') != FORMAT:
        got = data.get('format') if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f'checkpoint {path}: expected format {FORMAT!r}, got {got!r}')
    if data.get('version') != VERSION:
        why = (' (version 1 mixed the RGB and flow batch-norm statistics of the shared '
               'backbone: retrain)' if data.get('version') == 1 else '')
        raise CheckpointError(f'checkpoint {path}: expected version {VERSION}, got '
                              f'{data.get("version")!r}{why}')
    for key, kind in (('model', Mapping), ('config', Mapping), ('meta', Mapping)):
        if not isinstance(data.get(key), kind):
            raise CheckpointError(f'checkpoint {path}: expected {key!r} to be a dict, got '
                                  f'{type(data.get(key)).__name__}')
    try:
        config = DetectorConfig.from_dict(data['config'], 'detector')
    except ConfigError as exc:
        raise CheckpointError(f'checkpoint {path}: invalid config: {exc}') from exc
    return Checkpoint(dict(data['model']), config, dict(data['meta']))


def check_compatible(trained: DetectorConfig, given: DetectorConfig, source: str) -> None:
    """Raise ``CheckpointError`` if ``given`` changes what the weights of ``trained`` mean.

    Only ``RUNTIME_FIELDS`` may differ; every other difference is listed with both values.
    """
    def runtime(name: str) -> bool:
        return any(name == f or name.startswith(f + '.') for f in RUNTIME_FIELDS)
    a, b = trained.flatten(), given.flatten()
    diffs = [f'detector.{k}: checkpoint {a[k]!r} vs given {b[k]!r}'
             for k in a if not runtime(k) and a[k] != b[k]]
    if diffs:
        raise CheckpointError(f'{source}: the given config differs from the one the weights '
                              f'were trained with in {len(diffs)} setting(s): '
                              + '; '.join(diffs[:_LIST_LIMIT])
                              + ' (only post-processing, device, precision, channels_last and '
                              'flow.loss_weights may change; omit the config to use the '
                              "checkpoint's)")


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _listed(keys: list[str]) -> str:
    shown = ', '.join(keys[:_LIST_LIMIT])
    more = len(keys) - _LIST_LIMIT
    return shown + (f' (+{more} more)' if more > 0 else '')


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = 'state') -> None:
    """Load ``state`` into ``model`` strictly; list every missing/unexpected key and shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f'{k}: checkpoint {_shape(state[k])} vs model {tuple(expected[k].shape)}'
        for k in set(expected) & set(state)
        if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing key(s): {_listed(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected key(s): {_listed(unexpected)}')
        if shapes:
            parts.append(f'{len(shapes)} shape mismatch(es): {_listed(shapes)}')
        raise CheckpointError(f'{source}: expected a state dict matching the model, got '
                              + '; '.join(parts)
                              + ' (was it saved for another backbone/fusion/flow/class list?)')
    model.load_state_dict(state, strict=True)
