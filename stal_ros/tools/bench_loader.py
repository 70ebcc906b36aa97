# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Does data loading starve training?  The loader alone against the model's training step.

Run ``python -m stal_ros.tools.bench_loader [--config recipe.yaml]``: it builds the recipe's
training clips (a few videos of the motion benchmark, augmentation on), times batches from the
loader alone (no model) with the recipe's worker count, then times training steps of the
recipe's model on one prepared batch (no loading), and prints both rates and their ratio.  A
ratio above 1 means the loader delivers batches faster than the model consumes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np
import torch

from stal_ros.data.clips import ClipDataset, collate
from stal_ros.data.motion import make_split
from stal_ros.net.detector import build_model
from stal_ros.net.losses import DetectionLoss
from stal_ros.train import load_recipe, make_optimizer


def main(argv: Sequence[str] | None = None) -> int:
    """Print loader and training-step throughput (clips per second) and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', help='training recipe YAML (default: the CPU recipe)')
    parser.add_argument('--videos', type=int, default=24, help='benchmark videos to load from')
    parser.add_argument('--batches', type=int, default=30, help='batches timed')
    args = parser.parse_args(argv)
    recipe = load_recipe(args.config)
    model = build_model(recipe.detector).train()
    learned = model.motion is not None and model.motion.flow_subnet.learned
    videos = make_split('train', args.videos, recipe.data.motion)
    data = ClipDataset(videos, class_names=recipe.detector.class_names,
                       num_frames=model.num_frames, target_index=model.target_index,
                       input_size=model.input_size, augment=recipe.augment,
                       seed=recipe.train.seed, with_flows=learned)
    batch = recipe.train.batch_size
    order = np.random.default_rng(0).permutation(len(data))[:args.batches * batch]
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=order.reshape(args.batches, batch).tolist(), collate_fn=collate,
        num_workers=recipe.train.workers)
    began = time.perf_counter()
    first = None
    for clips, targets, flows in loader:
        first = first or (clips, targets, flows)
    load_rate = args.batches * batch / (time.perf_counter() - began)
    criterion = DetectionLoss.from_config(recipe.detector)
    optimizer = make_optimizer(model, recipe.optim)
    clips, targets, flows = first
    steps = max(5, args.batches // 3)
    began = time.perf_counter()
    for _ in range(steps):
        terms = criterion(model(clips), targets, flows)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
    step_rate = steps * batch / (time.perf_counter() - began)
    sys.stdout.write(
        f'loader alone ({recipe.train.workers} worker(s), batch {batch}): {load_rate:.0f} '
        f'clips/s; training step alone: {step_rate:.0f} clips/s; loader / model = '
        f'{load_rate / step_rate:.1f}x ({torch.get_num_threads()} torch threads)\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
