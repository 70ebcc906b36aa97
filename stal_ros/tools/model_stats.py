# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Parameter count and GFLOPs of each backbone x fusion x flow configuration.

Usage::

    python -m stal_ros.tools.model_stats [--input-size 300] [--backbones vgg16_rfb lite]
                                   [--fusions concat sum average stfp none]
                                   [--flows pwc dis farneback] [--device cpu]

GFLOPs are measured with ``torch.utils.flop_counter.FlopCounterMode`` on one forward of one
clip (N = 1, K frames, S x S), counting 2 FLOPs per multiply-add of convolutions and matrix
products (its convention).  Not counted: element-wise work, notably the PWC-Net cost volume
(computed as products and sums, a few tens of MFLOPs at 320x320) and the OpenCV DIS/Farneback
flows, which run outside torch.  With fusion ``none`` no flow is computed, so it is listed once
per backbone.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import logging
import sys
from typing import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from stal_ros.config import BACKBONE_KINDS, DetectorConfig, FLOW_KINDS, FUSION_KINDS
from stal_ros.net.detector import build_model

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelStats:
    """Size and cost of one configuration."""

    backbone: str
    fusion: str
    flow: str
    params: int
    flow_params: int
    gflops: float


def measure(config: DetectorConfig, device: str = 'cpu', seed: int = 0) -> ModelStats:
    """Count parameters and forward GFLOPs of ``config`` on one random (1, K, 3, S, S) clip."""
    torch.manual_seed(seed)
    model = build_model(config).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    flow_params = 0 if model.motion is None else sum(
        p.numel() for p in model.motion.parameters())
    s = config.input_size
    clip = torch.rand(1, config.frames.num_frames, 3, s, s, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(clip)
    flow = '-' if config.fusion.kind == 'none' else config.flow.kind
    return ModelStats(config.backbone.kind, config.fusion.kind, flow, params, flow_params,
                      counter.get_total_flops() / 1e9)


def configurations(base: DetectorConfig, backbones: Sequence[str], fusions: Sequence[str],
                   flows: Sequence[str]) -> list[DetectorConfig]:
    """Each backbone x fusion x flow variant of ``base`` (fusion 'none' once per backbone)."""
    out = []
    data = base.to_dict()
    for backbone in backbones:
        for fusion in fusions:
            for flow in (flows[:1] if fusion == 'none' else flows):
                variant = dict(data, backbone=dict(data['backbone'], kind=backbone),
                               fusion=dict(data['fusion'], kind=fusion),
                               flow=dict(data['flow'], kind=flow))
                out.append(DetectorConfig.from_dict(variant))
    return out


def format_table(rows: Sequence[ModelStats], input_size: int) -> str:
    """Markdown table of the measured rows."""
    lines = [f'| backbone | fusion | flow | params (M) | of which flow (M) | GFLOPs @ '
             f'{input_size}x{input_size} |',
             '|---|---|---|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r.backbone} | {r.fusion} | {r.flow} | {r.params / 1e6:.2f} | '
                     f'{r.flow_params / 1e6:.2f} | {r.gflops:.2f} |')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: print the table to stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--input-size', type=int, default=DetectorConfig().input_size)
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONE_KINDS),
                        choices=BACKBONE_KINDS)
    parser.add_argument('--fusions', nargs='+', default=list(FUSION_KINDS), choices=FUSION_KINDS)
    parser.add_argument('--flows', nargs='+', default=list(FLOW_KINDS), choices=FLOW_KINDS)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    # Checked with the first backbone asked for (the default VGG16 needs inputs >= 268).
    base = DetectorConfig.from_dict({'input_size': args.input_size, 'device': args.device,
                                     'backbone': {'kind': args.backbones[0]}})
    rows = []
    for config in configurations(base, args.backbones, args.fusions, args.flows):
        rows.append(measure(config, args.device))
        _LOG.info('measured %s / %s / %s', rows[-1].backbone, rows[-1].fusion, rows[-1].flow)
    sys.stdout.write(format_table(rows, args.input_size) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
