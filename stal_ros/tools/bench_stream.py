# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Benchmark of the model on a stream (one new frame per tick), with and without the flow cache.

Run ``python -m stal_ros.tools.bench_stream`` (``stal-bench-stream``; defaults: the shipped
``models/lite_dis.pt``, 4 test videos of the motion benchmark at 128 x 128, 1 camera).  Each
tick pushes one new frame per camera into the ``Pipeline`` and runs its ``step`` (one batched
``detect`` over the cameras, then the linkers), as the node's worker does.  Prints the median
and p90 wall time per tick with the classical flow's pair cache (each frame pair computed once
per stream) and, as the baseline measured in the same run, with the cache off (every clip
computes its K - 1 pairs), and their ratio.  The two runs alternate video by video so that a
change of machine load falls on both.  Their detections must be identical: the exit status is
1 when they are not.  A model without a classical flow has no cache: it runs once.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import time
from typing import Sequence

import numpy as np
import torch

from stal_ros.config import TubeConfig
from stal_ros.data.motion import make_split, MotionConfig
from stal_ros.net.classical_flow import ClassicalFlow, FLOW_CACHE_PAIRS
from stal_ros.net.detector import build_detector, Detector
from stal_ros.pipeline import Pipeline

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / 'models' / 'lite_dis.pt'
FRAME_NS = 33_333_333  # 30 fps


def stream_video(detector: Detector, frames: np.ndarray, cameras: int
                 ) -> tuple[list[float], list[tuple[np.ndarray, np.ndarray]]]:
    """Play one video to ``cameras`` cameras, a tick per frame; time each ``step``.

    Args:
        detector: the model.
        frames: (T, H, W, 3) uint8 RGB; every camera sees these frames.
        cameras: how many cameras (one batched ``detect`` per tick).

    Returns:
        Wall seconds of each tick that ran the model, and each result's (boxes, scores).
    """
    names = [f'cam{i}' for i in range(cameras)]
    pipe = Pipeline(detector, TubeConfig(), names)
    ticks, results = [], []
    for t, frame in enumerate(frames):
        for name in names:
            pipe.push(name, frame, (t + 1) * FRAME_NS)
        start = time.perf_counter()
        step = pipe.step()
        if step:
            ticks.append(time.perf_counter() - start)
        results += [(r.detections.boxes, r.detections.scores) for r in step]
    return ticks, results


def _stats(seconds: Sequence[float]) -> str:
    ms = np.asarray(seconds) * 1000.0
    return f'median {np.median(ms):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms'


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: print the figures on stdout; 1 if the runs disagree."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=str(DEFAULT_MODEL), help='checkpoint (.pt)')
    ap.add_argument('--videos', type=int, default=4, help='test videos played (40 frames each)')
    ap.add_argument('--size', type=int, default=128, help='side of the generated videos')
    ap.add_argument('--cameras', type=int, default=1, help='cameras batched per tick')
    ap.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'auto'")
    ap.add_argument('--threads', type=int, default=0,
                    help="torch CPU threads (0: leave torch's default)")
    args = ap.parse_args(argv)
    for name in ('videos', 'cameras'):
        if getattr(args, name) < 1:
            ap.error(f'--{name} {getattr(args, name)}: expected at least 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    detector = build_detector(checkpoint=args.model, device=args.device)
    motion = detector.model.motion
    flow = None if motion is None else motion.flow_subnet.estimator
    cached = isinstance(flow, ClassicalFlow)
    videos = make_split('test', args.videos, MotionConfig(height=args.size, width=args.size))
    frames = detector.config.frames
    out = sys.stdout
    out.write(f'stream: {args.model}, K={frames.num_frames} {frames.mode}, '
              f'{detector.config.flow.kind} flow, {args.videos} videos x '
              f'{videos[0].frames.shape[0]} frames at {args.size}x{args.size}, {args.cameras} '
              f'camera(s), device {detector.device}, {torch.get_num_threads()} torch threads; '
              f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n')
    settings = [FLOW_CACHE_PAIRS, 0] if cached else [None]
    ticks: dict = {s: [] for s in settings}
    results: dict = {s: [] for s in settings}
    stream_video(detector, videos[0].frames[:frames.num_frames + 1], args.cameras)  # warm-up
    for i, video in enumerate(videos):
        for s in settings if i % 2 == 0 else settings[::-1]:
            if cached:
                flow.cache_pairs = s
                flow.cache_clear()
            t, r = stream_video(detector, video.frames, args.cameras)
            ticks[s] += t
            results[s] += r
    if not cached:
        out.write(f'per tick: {_stats(ticks[None])} (no classical flow: no cache to '
                  'compare)\n')
        return 0
    on, off = ticks[FLOW_CACHE_PAIRS], ticks[0]
    out.write(f'flow cache on  ({FLOW_CACHE_PAIRS} pairs), per tick: {_stats(on)}\n')
    out.write(f'flow cache off (baseline), per tick: {_stats(off)}\n')
    out.write(f'ratio baseline / cache: {np.median(off) / np.median(on):.2f}x (median)\n')
    same = len(results[0]) == len(results[FLOW_CACHE_PAIRS]) and all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(results[FLOW_CACHE_PAIRS], results[0]))
    out.write(f'detections identical: {same}\n')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
