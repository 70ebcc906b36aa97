# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Training command (ROS-free): ``stal-train --config recipe.yaml --out runs/NAME``.

Paper §3.4 / §4.2: the detector is trained with L = L_conf + L_reg + w_flow L_flow (eq. 8) by
SGD (momentum 0.9, weight decay 5e-4, step schedule) or AdamW; a learned flow subnet is frozen
for the first ``train.freeze_flow_iterations`` steps and then trained end to end, with the
multiscale flow loss where the data carry exact flow (the motion benchmark does).

The recipe is one YAML file read into ``TrainRecipe`` (sections ``detector``, ``train``,
``optim``, ``augment``, ``data``; every key optional, defaults from the typed config); the
resolved recipe is written beside the checkpoints.  Runs are seeded: the initialisation, the
data order (a permutation per epoch from (seed, epoch)) and every augmentation (from
(seed, epoch, sample)) are fixed, so ``--resume`` continues exactly where a run stopped.

Outputs in ``--out``: ``recipe.yaml``, ``last.pt`` (resumable: model, optimiser, schedule, step;
written atomically every ``train.checkpoint_every`` steps and at the end), ``model.pt`` (the
model checkpoint of ``net.checkpoint``, loadable by ``build_detector``), ``log.jsonl`` (the
losses) and TensorBoard events when ``tensorboard`` is installed.  With weight averaging
(``train.swa_every``, ``stal_ros.net.averaging``) ``model.pt`` holds the averaged weights and
``model_last.pt`` the last ones.

Several GPUs or nodes: ``torchrun --nproc_per_node N -m stal_ros.train ...`` (PyTorch DDP, NCCL
on CUDA, gloo on CPU); ``train.batch_size`` is the global batch, split over the processes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import logging
import math
import os
from pathlib import Path
import sys
import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
import torch.distributed as dist
import yaml

from stal_ros.config import (AugmentConfig, ConfigBase, ConfigError, DetectorConfig,
                             OptimConfig, param, TrainConfig)
from stal_ros.data.clips import ClipDataset, collate
from stal_ros.data.motion import CLASS_NAMES, make_split, MotionConfig
from stal_ros.data.public import KINDS, open_dataset
from stal_ros.frames import FrameBuffer
from stal_ros.net.averaging import estimate_batch_norm, WeightAverage
from stal_ros.net.checkpoint import load_checkpoint, save_checkpoint
from stal_ros.net.checkpoint import load_state as load_weights
from stal_ros.net.detector import build_model, resolve_device, STALDetector
from stal_ros.net.losses import DetectionLoss
from stal_ros.net.widen import widen_width

LOG = logging.getLogger('stal_ros.train')
STATE_FORMAT = 'stal_ros.training_state'
STATE_VERSION = 1


@dataclass(frozen=True)
class DataConfig(ConfigBase):
    """Where the training clips come from."""

    dataset: str = param(
        'motion', "The training data: 'motion' (the motion benchmark, generated or read from "
        "directory), 'ucf24' (UCF101-24) or 'jhmdb' (JHMDB-21) read from root.",
        choices=('motion', 'ucf24', 'jhmdb'))
    directory: str = param(
        '', 'A split written by stal-make-benchmark to read; empty: generate the motion '
        'benchmark in memory from the train seeds.')
    train_videos: int = param(400, 'Videos generated for training (when directory is empty).',
                              ge=1)
    motion: MotionConfig = param(default_factory=MotionConfig)
    edge_clips: bool = param(
        False, 'Also train on the first and last frames of each video, whose clips repeat the '
        "video's first or last frame (as the frame buffer fills a stream's ends, frames.pad).")
    root: str = param(
        '', 'Folder of the public data set (ucf24, jhmdb): its ACT annotation file '
        '(UCF101v2-GT.pkl, JHMDB-GT.pkl) and Frames/ (or rgb-images/).')
    split_index: int = param(
        0, 'Train split of the public data set: 0 for UCF101-24, 0, 1 or 2 for JHMDB-21.',
        ge=0, le=2)

    def check(self) -> None:
        """Check that a public data set has a root and a split it has."""
        if self.dataset == 'motion':
            return
        kind = KINDS[self.dataset]
        if not self.root:
            self.fail('root', f'expected the {kind.title} folder with dataset = '
                      f'{self.dataset!r}')
        if self.directory:
            self.fail('directory', f"expected '' with dataset = {self.dataset!r} (the videos "
                      'come from root)')
        if self.split_index >= kind.num_splits:
            self.fail('split_index', f'expected 0 .. {kind.num_splits - 1} ({kind.title} has '
                      f'{kind.num_splits} split{"s" if kind.num_splits > 1 else ""})')


def _lite_motion_detector() -> DetectorConfig:
    """Return the CPU default: lite backbone + OpenCV DIS flow at the benchmark's 128 x 128."""
    return DetectorConfig.from_dict({
        'input_size': 128, 'class_names': list(CLASS_NAMES),
        'backbone': {'kind': 'lite', 'width': 1.0, 'batch_norm': True},
        'flow': {'kind': 'dis', 'input_size': [128, 128]}, 'fusion': {'kind': 'concat'}})


@dataclass(frozen=True)
class TrainRecipe(ConfigBase):
    """Everything a training run is made of; ``--config`` YAML files fill it."""

    detector: DetectorConfig = param(default_factory=_lite_motion_detector)
    train: TrainConfig = param(default_factory=TrainConfig)
    optim: OptimConfig = param(default_factory=OptimConfig)
    augment: AugmentConfig = param(default_factory=AugmentConfig)
    data: DataConfig = param(default_factory=DataConfig)

    def check(self) -> None:
        """Check that the detector's classes are the data's classes."""
        if self.data.dataset == 'motion' and not self.data.directory and \
                tuple(self.detector.class_names) != CLASS_NAMES:
            raise ConfigError(('detector', 'class_names'), self.detector.class_names,
                              f'expected the motion benchmark classes {list(CLASS_NAMES)}')
        if self.data.dataset != 'motion' and self.train.flow_pretrain_iterations:
            raise ConfigError(('train', 'flow_pretrain_iterations'),
                              self.train.flow_pretrain_iterations,
                              f'expected 0 with data.dataset = {self.data.dataset!r} (the '
                              'public data sets carry no exact flow to pre-train on)')


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``changes`` applied key by key (mappings merged, others replaced)."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_recipe(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainRecipe:
    """Read a recipe YAML and ``section.key=value`` overrides on top of the default recipe.

    Every key is optional: what a file or an override leaves out keeps the value of
    ``TrainRecipe()`` (the CPU recipe), section by section.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f'{path}: cannot read the recipe ({exc})') from None
        if not isinstance(data, dict):
            raise ConfigError(f'{path}: expected a mapping at the top level, got '
                              f'{type(data).__name__}')
    for item in overrides:
        key, sep, text = item.partition('=')
        if not sep:
            raise ConfigError(f'override {item!r}: expected section.key=value')
        node = data
        *parents, leaf = key.split('.')
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(text)
    where = f'{path}: ' if path else ''
    try:
        return TrainRecipe.from_dict(_merge(TrainRecipe().to_dict(), data))
    except ConfigError as exc:
        raise ConfigError(f'{where}{exc}') from None


# ------------------------------------------------------------------------------------------
# Distributed data parallel (torchrun) helpers.
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Return whether this process logs and writes files."""
        return self.rank == 0


def init_process(device_name: str) -> tuple[Process, torch.device]:
    """Join the torchrun process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world == 1:
        return Process(), resolve_device(device_name)
    rank, local = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_device(device_name)
    if device.type == 'cuda':
        device = torch.device('cuda', local)
        torch.cuda.set_device(device)
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return Process(rank, world, local), device


def epoch_order(num_samples: int, seed: int, epoch: int, process: Process) -> np.ndarray:
    """Return this process's share of the seeded permutation of epoch ``epoch``."""
    order = np.random.default_rng((seed, epoch)).permutation(num_samples)
    return order[process.rank::process.world]


def batches(dataset: ClipDataset, batch_size: int, seed: int, process: Process, workers: int,
            start_step: int) -> Iterator[tuple[torch.Tensor, list, list | None]]:
    """Endless batches, epoch after epoch, starting at global step ``start_step``."""
    per_epoch = len(dataset) // process.world // batch_size
    if per_epoch == 0:
        raise ConfigError(f'train.batch_size = {batch_size * process.world}: expected at most '
                          f'{len(dataset)} clips (the training set) per step')
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        dataset.set_epoch(epoch)
        order = epoch_order(len(dataset), seed, epoch, process)[:per_epoch * batch_size]
        chunks = order.reshape(per_epoch, batch_size)[skip:]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=chunks.tolist(), collate_fn=collate, num_workers=workers,
            persistent_workers=False)
        yield from loader
        epoch, skip = epoch + 1, 0


# ------------------------------------------------------------------------------------------
# Optimiser, schedule, checkpoints.
# ------------------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW; no weight decay on biases and normalisation weights (1-D tensors)."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    plain = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{'params': decay, 'weight_decay': cfg.weight_decay},
              {'params': plain, 'weight_decay': 0.0}]
    if cfg.kind == 'sgd':
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, iterations: int, cfg: OptimConfig) -> float:
    """Learning rate / base rate at ``step``: linear warm-up from 1/10, then the step schedule."""
    factor = cfg.gamma ** sum(step >= m * iterations for m in cfg.milestones)
    if step < cfg.warmup_iterations:
        factor *= 0.1 + 0.9 * step / cfg.warmup_iterations
    return factor


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
               recipe: TrainRecipe, average: WeightAverage | None = None) -> None:
    """Write the resumable training state atomically (loadable with weights_only=True)."""
    payload = {'format': STATE_FORMAT, 'version': STATE_VERSION, 'step': step,
               'model': {k: v.detach().cpu() for k, v in model.state_dict().items()},
               'optimizer': optimizer.state_dict(), 'recipe': recipe.to_dict()}
    if average is not None:
        payload['average'] = average.state_dict()
    tmp = path.with_name(path.name + '.tmp')
    torch.save(payload, tmp)
    os.replace(tmp, path)


FUSION_WEIGHT = 'motion.to_image.conv.weight'


def widen_frames(state: dict[str, torch.Tensor], config: DetectorConfig,
                 model: STALDetector) -> dict[str, torch.Tensor]:
    """Fit the weights of a model trained on fewer frames per clip to ``model`` (larger K).

    Only the 1x1 conv fusing the K - 1 flows owns weights that depend on K: its (3, 2(K - 1))
    weight.  The old pairs' columns are placed where the same pairs sit relative to the
    localised frame in the new clip, and the new pairs get zero weights, so the widened model
    computes what the old one did until training gives the new pairs a use (as I3D inflates 2D
    weights).  ``state`` is returned as is when K is the same (or the model has no flow).

    Args:
        state: the trained model's state dict.
        config: the trained model's detector config.
        model: the model to load into.

    Returns:
        The state dict to load.
    """
    old = FrameBuffer(config.frames)
    if (model.motion is None or FUSION_WEIGHT not in state
            or old.num_frames == model.num_frames):
        return state
    shift = model.target_index - old.target_index     # old frame i is new frame i + shift
    if not (old.num_frames < model.num_frames and 0 <= shift
            and shift + old.num_frames <= model.num_frames):
        raise ConfigError(('detector', 'frames', 'num_frames'), model.num_frames,
                          f'expected a clip that holds the K = {old.num_frames} clip of '
                          f'train.init_from around the same localised frame '
                          f'({config.frames.mode} mode)')
    weight = state[FUSION_WEIGHT]                                   # (3, 2(K_old - 1), 1, 1)
    wide = weight.new_zeros(weight.shape[0], 2 * (model.num_frames - 1), *weight.shape[2:])
    wide[:, 2 * shift:2 * shift + weight.shape[1]] = weight
    return {**state, FUSION_WEIGHT: wide}


def load_state(path: Path) -> dict[str, Any]:
    """Read a training state written by ``save_state`` (never unpickles objects)."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(f'--resume {path}: cannot be read as a training state ({exc})') \
            from exc
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT or \
            state.get('version') != STATE_VERSION:
        raise ValueError(f'--resume {path}: expected a {STATE_FORMAT} version {STATE_VERSION} '
                         'file written by stal-train')
    return state


# ------------------------------------------------------------------------------------------
# The run.
# ------------------------------------------------------------------------------------------

def training_videos(recipe: TrainRecipe) -> list[Any]:
    """Return the training videos: a public data set, ``data.directory`` or made from seeds.

    Raises:
        ConfigError: the detector's classes are not the public data set's classes.
        FileNotFoundError: a public data set's file or folder is missing.
        ValueError: its annotation file is malformed or refused.
    """
    data = recipe.data
    if data.dataset != 'motion':
        public = open_dataset(data.dataset, data.root, 'train', data.split_index)
        if tuple(recipe.detector.class_names) != public.class_names:
            raise ConfigError(('detector', 'class_names'), list(recipe.detector.class_names),
                              f'expected the {public.kind.title} classes of '
                              f'{data.root}: {list(public.class_names)}')
        return list(public.videos)
    if recipe.data.directory:
        from stal_ros.data.io import read_split
        return read_split(recipe.data.directory)
    return make_split('train', recipe.data.train_videos, recipe.data.motion)


class _Logger:
    """Losses to the log, a JSON-lines file and TensorBoard (when installed).

    A run starting at step ``start`` (0, or a resumed state's step) first drops what was logged
    for later steps: an interrupted run logs past its last checkpoint, and the resumed run
    logs those steps again.
    """

    def __init__(self, out: Path, enabled: bool, start: int = 0) -> None:
        self.enabled = enabled
        self.file = None
        self.board = None
        if enabled:
            path = out / 'log.jsonl'
            lines = path.read_text().splitlines() if path.is_file() else []
            kept = [line for line in lines if _logged_step(line) <= start]
            path.write_text(''.join(line + '\n' for line in kept))
            self.file = path.open('a')
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.board = SummaryWriter(str(out / 'tensorboard'), purge_step=start + 1)
            except ImportError:
                LOG.info('tensorboard is not installed: losses go to log.jsonl only')

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps({'step': step, **values}) + '\n')
        self.file.flush()
        if self.board is not None:
            for key, value in values.items():
                self.board.add_scalar(key, value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def _logged_step(line: str) -> float:
    """Return the step of one log.jsonl line (infinity for a line cut short by a crash)."""
    try:
        return int(json.loads(line)['step'])
    except (ValueError, KeyError, TypeError):
        return math.inf


def train(recipe: TrainRecipe, out: str | os.PathLike, resume: str | os.PathLike | None = None,
          progress: bool = True, stop_after: int | None = None) -> Path:
    """Run the training described by ``recipe``; return the path of ``model.pt``.

    ``stop_after`` ends this invocation after that many steps with the resumable ``last.pt``
    written (a time-sliced job continues with ``resume``); ``model.pt`` is written when the
    last iteration is done.

    Raises:
        ConfigError: the recipe cannot run (e.g. a batch below the model's minimum).
        ValueError: an unreadable ``resume`` file or one of another recipe.

    """
    process, device = init_process(recipe.detector.device)
    out = Path(out)
    cfg = recipe.train
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(recipe.detector)
    per_process = cfg.batch_size // process.world
    if per_process * process.world != cfg.batch_size:
        raise ConfigError(f'train.batch_size = {cfg.batch_size}: expected a multiple of the '
                          f'{process.world} processes')
    if per_process < model.min_train_batch:
        raise ConfigError(f'train.batch_size = {cfg.batch_size}: expected at least '
                          f'{model.min_train_batch * process.world} ({model.min_train_batch} '
                          f'per process): {model_reason(model)}')
    if cfg.init_from:
        # Only the weights must fit: settings that own no weights (the flow's DIS preset,
        # camera compensation, ...) may change from the run that made them, K may grow and
        # the backbone may widen.
        trained = load_checkpoint(cfg.init_from)
        weights = widen_frames(trained.model, trained.config, model)
        if trained.config.backbone.width != recipe.detector.backbone.width:
            weights = widen_width(weights, model, seed=cfg.seed)
        load_weights(model, weights, f'train.init_from {cfg.init_from}')
    start = 0
    state = None
    if resume is not None:
        state = load_state(Path(resume))
        # Keys added to the recipe since the state was written take their defaults.
        if _merge(TrainRecipe().to_dict(), state['recipe']) != recipe.to_dict():
            raise ValueError(f'--resume {resume}: the state was written by another recipe; '
                             'resume with the recipe.yaml beside it')
        model.load_state_dict(state['model'])
        start = int(state['step'])
    model.to(device).train()
    optimizer = make_optimizer(model, recipe.optim)
    if state is not None:
        optimizer.load_state_dict(state['optimizer'])
    average = WeightAverage(model) if cfg.swa_every else None
    if average is not None and state is not None and 'average' in state:
        average.load_state_dict(state['average'])
        average.to(device)
    swa_first = math.ceil(cfg.swa_start * cfg.iterations)
    net: nn.Module = model
    if process.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None)
    learned_flow = model.motion is not None and model.motion.flow_subnet.learned
    if cfg.flow_pretrain_iterations and not learned_flow:
        raise ConfigError(('train', 'flow_pretrain_iterations'), cfg.flow_pretrain_iterations,
                          'expected 0 for a model without a learned flow subnet')
    if cfg.flow_pretrain_iterations and process.world > 1:
        raise ConfigError(('train', 'flow_pretrain_iterations'), cfg.flow_pretrain_iterations,
                          'expected 0 with several processes (run the pre-training alone)')
    videos = training_videos(recipe)
    dataset = ClipDataset(videos, class_names=recipe.detector.class_names,
                          num_frames=model.num_frames, target_index=model.target_index,
                          input_size=model.input_size, augment=recipe.augment, seed=cfg.seed,
                          with_flows=learned_flow, pad=recipe.data.edge_clips)
    criterion = DetectionLoss.from_config(recipe.detector, flow_weight=cfg.flow_weight,
                                          flow_reduction=cfg.flow_reduction)
    amp = None
    if cfg.amp and device.type == 'cuda':
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler('cuda', enabled=amp == torch.float16)
    if process.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / 'recipe.yaml').write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        LOG.info('training %s on %s (%d process(es)): %d clips from %d videos, %d steps of %d',
                 type(model.backbone).__name__, device, process.world, len(dataset),
                 len(videos), cfg.iterations, cfg.batch_size)
    logger = _Logger(out, process.main, start)
    stream = batches(dataset, per_process, cfg.seed, process, cfg.workers, start)
    bar = None
    if progress and process.main:
        from tqdm import tqdm
        bar = tqdm(total=cfg.iterations, initial=start, unit='step', dynamic_ncols=True)
    sums: dict[str, float] = {}
    summed = 0
    began = time.monotonic()
    end = cfg.iterations if stop_after is None else min(cfg.iterations, start + stop_after)
    pretrain = cfg.flow_pretrain_iterations if learned_flow else 0
    for step in range(start, end):
        if learned_flow:
            if pretrain <= step < pretrain + cfg.freeze_flow_iterations:
                model.freeze_flow()
            else:
                model.unfreeze_flow()
        for group in optimizer.param_groups:
            group['lr'] = recipe.optim.lr * lr_factor(step, cfg.iterations, recipe.optim)
        clips, targets, flows = next(stream)
        clips = clips.to(device, non_blocking=True)
        targets = [(b.to(device), k.to(device)) for b, k in targets]
        flows = None if flows is None else [f.to(device) for f in flows]
        if step < pretrain:
            # Flow pre-training: the flow subnet alone, on the exact flow (paper eq. 1).
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                motion = model.motion(clips, (model.input_size,) * 2)
            terms = criterion.flow_only(motion, flows)
        else:
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                output = net(clips)
            terms = criterion(output, targets, flows)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms.total).backward()
        if recipe.optim.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), recipe.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        values = {'loss': terms.total.item(), 'conf': terms.conf.item(),
                  'reg': terms.reg.item(), 'flow': terms.flow.item()}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f'step {step}: the loss is not finite ({values}); lower '
                                     'optim.lr or check the data')
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
        summed += 1
        done = step + 1
        if average is not None and done >= swa_first and \
                (done % cfg.swa_every == 0 or done == cfg.iterations):
            average.update(model)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f'{values["loss"]:.3f}')
        if done % cfg.log_every == 0 or done == cfg.iterations:
            # The mean over the steps since the last log (or since a resume).
            mean = {k: v / summed for k, v in sums.items()}
            mean['lr'] = optimizer.param_groups[0]['lr']
            logger.write(done, mean)
            if process.main:
                LOG.info('step %d/%d loss %.4f (conf %.4f reg %.4f flow %.4f) lr %.2e, %.1f s',
                         done, cfg.iterations, mean['loss'], mean['conf'], mean['reg'],
                         mean['flow'], mean['lr'], time.monotonic() - began)
            sums, summed = {}, 0
        if process.main and (done % cfg.checkpoint_every == 0 or done == end):
            save_state(out / 'last.pt', model, optimizer, done, recipe, average)
    if bar is not None:
        bar.close()
    logger.close()
    path = out / 'model.pt'
    if process.main and end == cfg.iterations:
        meta = {'iterations': cfg.iterations, 'recipe': recipe.to_dict()}
        if average is not None:
            save_checkpoint(out / 'model_last.pt', model, recipe.detector,
                            seconds=round(time.monotonic() - began, 1), **meta)
            average.apply_to(model)
            used = estimate_batch_norm(model, (b[0].to(device) for b in stream),
                                       cfg.swa_bn_batches)
            meta['swa'] = {'averaged': average.count, 'batch_norm_batches': used}
            LOG.info('model.pt: the mean of %d weights from step %d on, batch norm from %d '
                     'batches', average.count, swa_first, used)
        save_checkpoint(path, model, recipe.detector,
                        seconds=round(time.monotonic() - began, 1), **meta)
    if process.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return path


def model_reason(model: STALDetector) -> str:
    """Why a model needs more than one clip per training batch."""
    return (f'its smallest feature map is 1x1 at input size {model.input_size} and batch '
            'norm needs more than one value per channel in training')


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``stal-train``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', help='recipe YAML (sections detector, train, optim, '
                        'augment, data); default: the built-in CPU recipe')
    parser.add_argument('--out', required=True, help='output folder (checkpoints, logs)')
    parser.add_argument('--resume', help='a last.pt written by an interrupted run')
    parser.add_argument('--set', action='extend', nargs='+', default=[],
                        metavar='SECTION.KEY=VALUE',
                        help='override recipe values, e.g. train.iterations=100')
    parser.add_argument('--stop-after', type=int, help='stop after this many steps (resumable)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    try:
        recipe = load_recipe(args.config, args.set)
        path = train(recipe, args.out, args.resume, progress=not args.no_progress,
                     stop_after=args.stop_after)
    except (ConfigError, ValueError) as exc:
        LOG.error('%s', exc)
        return 2
    LOG.info('wrote %s', path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
