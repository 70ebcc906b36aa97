# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Benchmark of the online tube linker, and the plain reference linker it is checked against.

Run ``python -m stal_ros.bench_tubes`` (defaults: 24 classes x 10 boxes per frame, 10,000
frames).  Prints the median and p99 time of ``OnlineTubeLinker.update`` per frame, the peak
memory traced while linking the stream, and the ratio to ``ReferenceTubeLinker`` (a direct
per-class loop over tubes and boxes, ROAD's MATLAB structure) measured in the same run on the
first ``--baseline-frames`` frames, whose tubes must come out identical.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import time
import tracemalloc
from typing import Iterator, Sequence

import numpy as np

from stal_ros.config import TubeConfig
from stal_ros.structures import Detections
from stal_ros.tubes import (allocate_tube_numbers, box_iou, check_frame, LinkerStep,
                            OnlineTubeLinker, Tube)

FRAME_NS = 33_333_333  # 30 fps


class ReferenceTubeLinker:
    """ROAD linking written as plain loops over classes, tubes and boxes (slow, obvious).

    Same constructor, ``update``, ``flush`` and outputs as ``OnlineTubeLinker``; used to
    cross-check it in tests and as the benchmark's baseline.  It keeps whole histories (only
    the snapshots are capped), so it is not meant for endless streams.
    """

    def __init__(self, config: TubeConfig, num_classes: int, id_prefix: str = '') -> None:
        self.config = config
        self.num_classes = num_classes
        self.id_prefix = id_prefix
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self._frame = -1
        self._last_stamp: int | None = None
        self._stamps: dict[int, int] = {}
        self._tubes: list[list[dict]] = [[] for _ in range(self.num_classes)]

    def _edge(self, tube: dict, score: float, cs: np.ndarray | None) -> float:
        kind = self.config.edge_cost
        if kind == 'score':
            return score
        a = tube['cls']
        d2 = float((a * a).sum()) + float((cs * cs).sum()) - 2.0 * float(np.dot(a, cs))
        sim = 1.0 - float(np.sqrt(max(d2, 0.0)))
        return sim if kind == 'scrSim' else sim + score

    def _nms(self, det: Detections, c: int) -> list[int]:
        cfg = self.config
        cand = [i for i in range(len(det))
                if det.labels[i] == c and det.scores[i] > cfg.score_threshold]
        cand.sort(key=lambda i: -det.scores[i])
        kept: list[int] = []
        for i in cand:
            if len(kept) == cfg.top_k:
                break
            if all(box_iou(det.boxes[j:j + 1], det.boxes[i:i + 1])[0, 0] <= cfg.nms_iou
                   for j in kept):
                kept.append(i)
        return kept

    def update(self, det: Detections, stamp_ns: int) -> LinkerStep:
        """Link one frame (see ``OnlineTubeLinker.update``)."""
        cfg = self.config
        check_frame(det, stamp_ns, self._last_stamp, self.num_classes, cfg.edge_cost)
        self._last_stamp = stamp_ns
        t = self._frame = self._frame + 1
        self._stamps[t] = stamp_ns
        finished = []
        for c in range(self.num_classes):
            kept = self._nms(det, c)
            tubes = self._tubes[c]
            w = cfg.score_window
            tubes.sort(key=lambda p: (-sum(p['obs'][-w:]) / len(p['obs'][-w:]), p['num']))
            claimed = set()
            for p in tubes:
                best, best_i = 0.0, -1
                for i in kept:
                    iou = box_iou(p['boxes'][-1][None], det.boxes[i:i + 1])[0, 0]
                    if i not in claimed and iou >= cfg.iou_threshold:
                        cs = None if det.class_scores is None else det.class_scores[i]
                        e = self._edge(p, float(det.scores[i]), cs)
                        if best_i < 0 or e > best:
                            best, best_i = e, i
                if best_i >= 0:
                    claimed.add(best_i)
                    for f in range(p['frames'][-1] + 1, t):  # ROAD's gap filling
                        self._append(p, f, p['boxes'][-1], p['scores'][-1], False)
                    self._append(p, t, det.boxes[best_i], det.scores[best_i], True)
                    if det.class_scores is not None:
                        p['cls'] = det.class_scores[best_i]
            for p in list(tubes):
                if t - p['frames'][-1] > cfg.jump_gap:
                    tubes.remove(p)
                    if len(p['frames']) >= cfg.min_publish_length:
                        finished.append(self._tube(p, 'finished'))
            for i in kept:
                if i not in claimed:
                    p = {'num': allocate_tube_numbers(1), 'label': c, 'frames': [],
                         'boxes': [], 'scores': [], 'observed': [], 'obs': [],
                         'cls': None if det.class_scores is None else det.class_scores[i]}
                    self._append(p, t, det.boxes[i], det.scores[i], True)
                    tubes.append(p)
        active = [self._tube(p, 'active') for ts in self._tubes for p in ts
                  if len(p['frames']) >= cfg.min_publish_length]
        return LinkerStep(t, stamp_ns, len(active), finished, active=active)

    def flush(self) -> list[Tube]:
        """Finish every live tube."""
        out = [self._tube(p, 'finished') for ts in self._tubes for p in ts
               if len(p['frames']) >= self.config.min_publish_length]
        self._tubes = [[] for _ in range(self.num_classes)]
        return out

    @staticmethod
    def _append(p: dict, f: int, box: np.ndarray, score: float, observed: bool) -> None:
        p['frames'].append(f)
        p['boxes'].append(np.asarray(box, np.float32))
        p['scores'].append(np.float32(score))
        p['observed'].append(observed)
        if observed:
            p['obs'].append(float(score))

    def _tube(self, p: dict, state: str) -> Tube:
        h = self.config.max_history
        frames = p['frames'][-h:]
        stamps = np.array([self._stamps[f] for f in frames], np.int64)
        return Tube(f"{self.id_prefix}{p['num']}", label=p['label'],
                    score=sum(p['obs']) / len(p['obs']), state=state,
                    start_stamp_ns=self._stamps[p['frames'][0]], last_stamp_ns=int(stamps[-1]),
                    start_frame=p['frames'][0], last_frame=p['frames'][-1],
                    num_observed=len(p['obs']), stamps_ns=stamps,
                    frame_indices=np.array(frames, np.int64),
                    boxes=np.array(p['boxes'][-h:], np.float32).reshape(-1, 4),
                    scores=np.array(p['scores'][-h:], np.float32),
                    observed=np.array(p['observed'][-h:], bool))


def synthetic_stream(num_frames: int, num_classes: int = 24, boxes_per_class: int = 10,
                     seed: int = 0, class_scores: bool = False, width: float = 1280.0,
                     height: float = 720.0) -> Iterator[Detections]:
    """Generate the detections of a synthetic scene: per class, actors moving, with misses.

    Each frame has exactly ``boxes_per_class`` boxes per class (D = C x that).  Per class,
    ``boxes_per_class`` actors drift with jittered boxes; each frame an actor is missed with
    probability 0.05 (a random clutter box takes its place, so the tube has a gap) and
    restarts elsewhere with probability 0.01 (its tube ends, a new one starts).
    """
    rng = np.random.default_rng(seed)
    n = num_classes * boxes_per_class
    labels = np.repeat(np.arange(num_classes), boxes_per_class)
    size = rng.uniform(40, 200, (n, 2))
    centre = rng.uniform(size / 2, [width, height] - size / 2)
    vel = rng.normal(0, 3, (n, 2))
    base = rng.uniform(0.05, 1.0, n)
    for _ in range(num_frames):
        restart = rng.random(n) < 0.01
        centre[restart] = rng.uniform([0, 0], [width, height], (int(restart.sum()), 2))
        centre = np.clip(centre + vel, 0, [width, height])
        box = np.concatenate([centre - size / 2, centre + size / 2], 1)
        box += rng.normal(0, 2, box.shape)
        score = np.clip(base + rng.normal(0, 0.05, n), 0.0, 1.0)
        miss = rng.random(n) < 0.05
        m = int(miss.sum())
        xy = rng.uniform([0, 0], [width, height], (m, 2))
        box[miss] = np.concatenate([xy, xy + rng.uniform(20, 150, (m, 2))], 1)
        score[miss] = rng.uniform(0, 0.3, m)
        box = np.clip(box, 0, [width, height, width, height])
        box[:, 2:] = np.maximum(box[:, 2:], box[:, :2])
        cs = None
        if class_scores:
            cs = rng.dirichlet(np.ones(num_classes), n) * (1 - score[:, None])
            cs[np.arange(n), labels] = score
        yield Detections(box.astype(np.float32), score.astype(np.float32), labels, cs)


def _run(linker, frames: Iterator[Detections], materialise: bool,
         keep: bool) -> tuple[np.ndarray, np.ndarray, list, int]:
    """Link a stream, timing each ``update`` (and ``active`` if asked).

    Returns:
        wall-clock ns (T,), thread CPU ns (T,), the finished tubes (if ``keep``), their number.
    """
    wall, cpu, finished, count = [], [], [], 0
    for t, det in enumerate(frames):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        step = linker.update(det, t * FRAME_NS)
        if materialise:
            step.active
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
        count += step.num_finished
        if keep:
            finished.extend(step.finished)
    last = linker.flush()
    if keep:
        finished.extend(last)
    return (np.array(wall, np.float64), np.array(cpu, np.float64), finished,
            count + len(last))


def _stats(ns: np.ndarray) -> str:
    return f'median {np.median(ns) / 1e6:.3f} ms, p99 {np.percentile(ns, 99) / 1e6:.3f} ms'


_FIELDS = ('label', 'state', 'start_frame', 'last_frame', 'num_observed', 'start_stamp_ns',
           'last_stamp_ns')
_ARRAYS = ('stamps_ns', 'frame_indices', 'boxes', 'scores', 'observed')


def same_tubes(a: Sequence[Tube], b: Sequence[Tube]) -> bool:
    """Tell whether two tube lists are equal up to id numbering (compared in creation order)."""
    def key(t: Tube) -> int:
        return int(re.search(r'(\d+)$', t.tube_id).group(1))
    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key)):
        if any(getattr(x, f) != getattr(y, f) for f in _FIELDS):
            return False
        if abs(x.score - y.score) > 1e-9:
            return False
        if not all(np.array_equal(getattr(x, f), getattr(y, f)) for f in _ARRAYS):
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the figures on stdout."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--frames', type=int, default=10_000, help='frames linked (timed)')
    ap.add_argument('--classes', type=int, default=24, help='C, classes (UCF101-24: 24)')
    ap.add_argument('--boxes', type=int, default=10, help='boxes per class and frame')
    ap.add_argument('--edge-cost', default='score', choices=('score', 'scrSim', 'scrMinusSim'))
    ap.add_argument('--max-history', type=int, default=TubeConfig().max_history,
                    help='tubes.max_history')
    ap.add_argument('--baseline-frames', type=int, default=200,
                    help='frames linked by the reference linker for the ratio (0: skip)')
    ap.add_argument('--materialise', action='store_true',
                    help='also build LinkerStep.active (Tube snapshots) inside the timing')
    ap.add_argument('--seed', type=int, default=0, help='seed of the synthetic scene')
    args = ap.parse_args(argv)
    cfg = TubeConfig(edge_cost=args.edge_cost, max_history=args.max_history)
    need_cs = args.edge_cost != 'score'

    def stream(n: int) -> Iterator[Detections]:
        return synthetic_stream(n, args.classes, args.boxes, args.seed, need_cs)

    out = sys.stdout
    out.write(f'linker: {args.classes} classes x {args.boxes} boxes/frame, {args.frames} '
              f'frames, edge_cost={args.edge_cost}, max_history={args.max_history}, '
              f'materialise={args.materialise}; load average {os.getloadavg()[0]:.1f} on '
              f'{os.cpu_count()} CPUs\n')
    wall, cpu, _, count = _run(OnlineTubeLinker(cfg, args.classes), stream(args.frames),
                               args.materialise, keep=False)
    out.write(f'OnlineTubeLinker.update per frame: wall {_stats(wall)}; thread CPU '
              f'{_stats(cpu)}; {count} tubes finished\n')
    tracemalloc.start()
    linker = OnlineTubeLinker(cfg, args.classes)
    for t, det in enumerate(stream(args.frames)):
        step = linker.update(det, t * FRAME_NS)
        step.finished, step.active  # build the snapshots a node would publish
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out.write(f'memory (snapshots built): peak traced {peak / 2**20:.2f} MiB, held after '
              f'{args.frames} frames {current / 2**20:.2f} MiB, process max RSS '
              f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB\n')
    if args.baseline_frames > 0:
        nb = min(args.baseline_frames, args.frames)
        ref_wall, _, ref_tubes, _ = _run(ReferenceTubeLinker(cfg, args.classes), stream(nb),
                                         True, keep=True)
        fast_wall, _, fast_tubes, _ = _run(OnlineTubeLinker(cfg, args.classes), stream(nb),
                                           True, keep=True)
        ref_med = np.median(ref_wall)
        out.write(f'ReferenceTubeLinker (plain loops, {nb} frames): median '
                  f'{ref_med / 1e6:.3f} ms/frame = {ref_med / np.median(wall):.0f}x '
                  f'OnlineTubeLinker.update, {ref_med / np.median(fast_wall):.0f}x update + '
                  f'active snapshots ({np.median(fast_wall) / 1e6:.3f} ms); tubes identical: '
                  f'{same_tubes(ref_tubes, fast_tubes)}\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
