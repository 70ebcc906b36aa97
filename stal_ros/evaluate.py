# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Evaluation command (ROS-free): ``stal-evaluate --model models/X.pt --split test --out DIR``.

Runs a model on every frame of every video of a split as the node does (the model's frame
buffer, the detector, the online ROAD linker per video), then scores.  Each video is a finite
stream: with ``frames.pad`` (the default) its first and last frames are localised with the
edge frame repeated, so every frame has a result (``FrameBuffer.flush``).  Scores:

* frame-mAP at ``--iou`` (0.5) from every per-frame detection, and the frame confusion (which
  class the best-scoring overlapping box gives each true box, or missed: why a class is weak);
* video-mAP at 0.2, 0.5, 0.75 and 0.5:0.95 from the linker's tubes (optionally trimmed with
  ROAD's Viterbi and minimum length, ``--trim``);
* the flow end-point error of the model's flow subnet (learned or classical) against the exact
  flow, on the pixels where the flow is defined, when the split carries ground-truth flow;
* with ``--bootstrap N``, how far the split resolves frame-mAP and video-mAP@0.5: their
  standard deviation and 95 % interval over N draws of the split's videos with replacement
  (``stal_ros.metrics.bootstrap``).

It prints per-class tables, writes precision-recall plots (PNG) and ``report.json`` with the
model's sha256, its config, the evaluation settings and every number printed.  The split is
the motion benchmark's (generated from its seeds, or read with ``--data DIR`` from a folder
written by stal-make-benchmark).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import sys
import time
from typing import Any, Sequence

import numpy as np
import torch

from stal_ros.config import TrimConfig, TubeConfig
from stal_ros.data.motion import ground_truth, make_split, MotionConfig
from stal_ros.frames import FrameBuffer
from stal_ros.metrics import (APResult, DEFAULT_THRESHOLDS, DetectedTube, frame_ap,
                              frame_confusion, FrameDetections, video_ap, VideoAPResult)
from stal_ros.metrics.bootstrap import bootstrap_map
from stal_ros.net.detector import build_detector, Detector
from stal_ros.net.flow_loss import endpoint_error
from stal_ros.tubes import OnlineTubeLinker, ScoreSmoother
from stal_ros.tubes.trim import detected_tube, trim_tubes

LOG = logging.getLogger('stal_ros.evaluate')
FRAME_NS = 33_333_333  # stamps of a 30 fps stream (frame t at (t + 1) * FRAME_NS)
MOTION_SIZE = MotionConfig().height  # the motion benchmark's videos, as stal-train makes them


def sha256(path: str | os.PathLike) -> str:
    """Hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def evaluation_tubes_config(config: TubeConfig, num_frames: int) -> TubeConfig:
    """Return the node's linker settings with a history long enough for whole videos."""
    values = config.to_dict()
    values['max_history'] = max(config.max_history, num_frames)
    return TubeConfig.from_dict(values)


def run_video(detector: Detector, video: Any, tubes: TubeConfig,
              batch_size: int = 16) -> tuple[FrameDetections, list[DetectedTube]]:
    """Detect and link one video as the node would (one new frame per tick).

    Args:
        detector: the model.
        video: ``frames`` (T, H, W, 3) uint8 RGB and ``name``.
        tubes: the linker settings.
        batch_size: clips per ``detect`` call (the results do not depend on it).

    Returns:
        The per-frame detections (frame numbers = 0-based frame indices) and the video's tubes.

    """
    buffer = FrameBuffer(detector.config.frames)
    clips = []
    for t, frame in enumerate(video.frames):
        clip = buffer.push(frame, (t + 1) * FRAME_NS)
        if clip is not None:
            clips.append(clip)
    clips += buffer.flush()          # the last frames' clips (frames.pad)
    detections = []
    for i in range(0, len(clips), batch_size):
        detections += detector.detect(clips[i:i + batch_size])
    linker = OnlineTubeLinker(tubes, len(detector.class_names), id_prefix=f'{video.name}/')
    smoother = ScoreSmoother(tubes, len(detector.class_names))
    parts, found = [], []
    first_frame = None
    for clip, det in zip(clips, detections):
        frame = clip.target_stamp_ns // FRAME_NS - 1
        first_frame = frame if first_frame is None else first_frame
        det = smoother.update(det)
        parts.append(FrameDetections.from_detections(video.name, frame, det))
        found += linker.update(det, clip.target_stamp_ns).finished
    found += linker.flush()
    # The linker counts its frames from the first clip's target frame.
    offset = 0 if first_frame is None else first_frame
    return (FrameDetections.concatenate(parts),
            [detected_tube(tube, video.name, offset) for tube in found])


def flow_error(detector: Detector, videos: Sequence[Any], max_pairs: int = 400) -> float | None:
    """Mean end-point error (pixels of the frames) of the model's flow subnet, or None.

    Averaged over the pixels where the exact flow is defined (``flow_valid``), on up to
    ``max_pairs`` frame pairs spread over the videos.
    """
    motion = detector.model.motion
    if motion is None or getattr(videos[0], 'flows', None) is None:
        return None
    pairs = [(v, t) for v in videos for t in range(v.frames.shape[0] - 1)]
    step = max(1, len(pairs) // max_pairs)
    total, count = 0.0, 0
    device = detector.device
    with torch.inference_mode():
        for video, t in pairs[::step]:
            frames = torch.from_numpy(np.ascontiguousarray(video.frames[t:t + 2])).to(device)
            frames = frames.permute(0, 3, 1, 2).float() / 255.0              # (2, 3, H, W)
            out = motion.flow_subnet(frames[:1], frames[1:])
            gt = torch.from_numpy(np.asarray(video.flows[t], np.float32)).to(device)
            epe = endpoint_error(out.flow, gt.permute(2, 0, 1)[None])[0]    # (H, W)
            valid = getattr(video, 'flow_valid', None)
            mask = (torch.ones_like(epe, dtype=torch.bool) if valid is None
                    else torch.from_numpy(np.asarray(valid[t], bool)).to(device))
            total += float(epe[mask].sum())
            count += int(mask.sum())
    return total / count if count else None


def _rows(result: APResult) -> list[dict[str, Any]]:
    return [{'class': c.name, 'ap': None if math.isnan(c.ap) else c.ap, 'num_gt': c.num_gt,
             'num_det': c.num_det, 'num_tp': c.num_tp} for c in result.classes]


def _plot(results: dict[str, APResult], path: Path) -> None:
    """Precision-recall curves, one panel per result, one line per class."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5), squeeze=False)
    for ax, (title, result) in zip(axes[0], results.items()):
        for c in result.classes:
            if c.num_gt and c.recall.size:
                ax.plot(np.concatenate(([0.0], c.recall)),
                        np.concatenate(([1.0], c.precision)), label=f'{c.name} {c.ap:.2f}')
        ax.set_title(f'{title}: mAP {result.mean_ap:.3f}')
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1.01)
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc='lower left')
        else:                  # no class with both ground truth and a detection
            ax.text(0.5, 0.5, 'no detections', ha='center', va='center')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate(detector: Detector, videos: Sequence[Any], gt: Any, *, tubes: TubeConfig,
             trim: TrimConfig | None, iou: float = 0.5,
             bootstrap: int = 0) -> dict[str, Any]:
    """Score a detector on videos; return every number (see the module docstring).

    ``bootstrap``: draws of the videos for the mAPs' intervals (0: none).
    """
    if not videos:
        raise ValueError('evaluate: expected at least one video, got none')
    length = max(v.frames.shape[0] for v in videos)
    tubes = evaluation_tubes_config(tubes, length)
    began = time.monotonic()
    parts, found = [], []
    for video in videos:
        dets, video_tubes = run_video(detector, video, tubes)
        parts.append(dets)
        found += video_tubes
    seconds = time.monotonic() - began
    if trim is not None:
        found = trim_tubes(found, trim)
    detections = FrameDetections.concatenate(parts)
    frames = frame_ap(gt, detections, iou)
    confusion = frame_confusion(gt, detections, iou)
    video = video_ap(gt, found, DEFAULT_THRESHOLDS)
    epe = flow_error(detector, videos)
    num_frames = sum(v.frames.shape[0] for v in videos)
    spread = (bootstrap_map(gt, detections, found, draws=bootstrap, iou=iou)
              if bootstrap else None)
    return {'frame': frames, 'confusion': confusion, 'video': video, 'flow_epe': epe,
            'bootstrap': spread,
            'num_videos': len(videos),
            'num_frames': num_frames, 'num_tubes': len(found),
            'seconds_per_frame': seconds / max(num_frames, 1)}


def summary(numbers: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON-ready report body of ``evaluate``'s numbers."""
    frames: APResult = numbers['frame']
    video: VideoAPResult = numbers['video']
    return {
        'frame_map': frames.mean_ap, 'frame_iou': frames.iou_threshold,
        'video_map': {'0.2': video.mean_ap(0.2), '0.5': video.mean_ap(0.5),
                      '0.75': video.mean_ap(0.75), '0.5:0.95': video.mean_ap_coco},
        'protocol': frames.protocol, 'frame_classes': _rows(frames),
        'frame_confusion': _confusion_rows(numbers['confusion'],
                                           [c.name for c in frames.classes]),
        'video_classes_0.5': _rows(video.result(0.5)),
        'flow_epe': numbers['flow_epe'], 'num_videos': numbers['num_videos'],
        'num_frames': numbers['num_frames'], 'num_tubes': numbers['num_tubes'],
        'seconds_per_frame': numbers['seconds_per_frame'],
        'bootstrap': _bootstrap_body(numbers.get('bootstrap'))}


def _bootstrap_body(spread: dict[str, Any] | None) -> dict[str, Any] | None:
    if spread is None:
        return None
    frame = spread['frame_map']
    return {'draws': int(frame.samples.size), 'level': frame.level,
            'frame_map': spread['frame_map'].to_dict(),
            'video_map_0.5': spread['video_map'].to_dict()}


def _confusion_rows(counts: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, int]]:
    """Return {true class: {class given or 'missed': boxes}}, zero counts left out."""
    columns = [*names, 'missed']
    return {name: {columns[j]: int(n) for j, n in enumerate(row) if n}
            for name, row in zip(names, counts)}


def format_confusion(counts: np.ndarray, names: Sequence[str], iou: float) -> str:
    """Return the frame confusion as a text table, in % of each true class's boxes.

    Rows are the true classes, numbered; columns the class given, by the same numbers.

    Args:
        counts: (K, K + 1) from ``frame_confusion`` (column K: missed).
        names: the K class names.
        iou: the IoU threshold used (for the title).
    """
    label = [f'{k:>2} {name}' for k, name in enumerate(names)]
    width = max(len(text) for text in label)
    lines = [f'Frame confusion (IoU >= {iou:g}): % of the true boxes of each class (rows) that '
             'the best-scoring', 'overlapping box gives to each class (columns), or missed '
             '(no box overlaps):',
             ' ' * width + ''.join(f'{k:>6}' for k in range(len(names))) + '  missed   boxes']
    for text, row in zip(label, counts):
        total = int(row.sum())
        share = 100.0 * row / max(total, 1)
        lines.append(f'{text:<{width}}' + ''.join(f'{v:>6.1f}' for v in share[:-1])
                     + f'{share[-1]:>8.1f}{total:>8}')
    return '\n'.join(lines)


def print_report(numbers: dict[str, Any], stream: Any = None) -> dict[str, Any]:
    """Print the per-class tables and the summary line; return ``summary(numbers)``."""
    stream = sys.stdout if stream is None else stream
    stream.write(numbers['frame'].format_table() + '\n\n')
    names = [c.name for c in numbers['frame'].classes]
    stream.write(format_confusion(numbers['confusion'], names, numbers['frame'].iou_threshold)
                 + '\n\n')
    stream.write(numbers['video'].format_table() + '\n\n')
    report = summary(numbers)
    epe = report['flow_epe']
    seconds = report.get('seconds_per_frame')
    stream.write(f"frame-mAP@{report['frame_iou']:g} {report['frame_map']:.4f}; video-mAP "
                 + ', '.join(f'@{k} {v:.4f}' for k, v in report['video_map'].items())
                 + (f'; flow EPE {epe:.3f} px' if epe is not None else '')
                 + (f'; {seconds * 1000:.1f} ms per frame' if seconds is not None else '')
                 + '\n')
    spread = report.get('bootstrap')
    if spread is not None:
        stream.write(f"bootstrap over the videos ({spread['draws']} draws): "
                     + '; '.join(f"{name} sd {m['sd']:.4f}, {100 * spread['level']:g} % "
                                 f"interval {m['low']:.4f}-{m['high']:.4f}"
                                 for name, m in (('frame-mAP', spread['frame_map']),
                                                 ('video-mAP@0.5', spread['video_map_0.5'])))
                     + '\n')
    return report


def write_report(out: str | os.PathLike, numbers: dict[str, Any], report: dict[str, Any],
                 extra: dict[str, Any]) -> Path:
    """Write ``report.json`` (``report`` updated with ``extra``) and ``pr_curves.png``.

    Both files are written under temporary names and renamed, so an interrupted run leaves
    either the old files or the new ones.  Returns the report's path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    body = dict(report)
    body.update(extra)
    path = out / 'report.json'
    tmp = out / '.report.json.tmp'
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)
    plot_tmp = out / '.pr_curves.tmp.png'
    _plot({f"frame-AP@{report['frame_iou']:g}": numbers['frame'],
           'video-AP@0.5': numbers['video'].result(0.5)}, plot_tmp)
    os.replace(plot_tmp, out / 'pr_curves.png')
    LOG.info('wrote %s and %s', path, out / 'pr_curves.png')
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``stal-evaluate``)."""
    from stal_ros.data.public import KINDS, open_dataset
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', required=True, help='checkpoint (.pt) to evaluate')
    parser.add_argument('--dataset', default='motion', choices=('motion', *KINDS),
                        help='motion: the motion benchmark (default); ucf24: UCF101-24, '
                        'jhmdb: JHMDB-21, read from --root')
    parser.add_argument('--root', help='folder of the public data set (its ACT annotation '
                        'file and Frames/ or rgb-images/); with --dataset ucf24 or jhmdb')
    parser.add_argument('--split', default='test', choices=('train', 'val', 'test'),
                        help='split (default test); the public data sets have train and test')
    parser.add_argument('--split-index', type=int, default=0,
                        help='public data set split: 0 for UCF101-24, 0, 1 or 2 for JHMDB-21')
    parser.add_argument('--count', type=int,
                        help='videos of the split (default: 100 generated motion videos, all '
                        'videos of a folder or a public data set)')
    parser.add_argument('--data', help='read the split from a stal-make-benchmark folder')
    parser.add_argument('--size', type=int, default=MOTION_SIZE,
                        help=f'side of the generated motion-benchmark videos ({MOTION_SIZE}, as '
                        'in training); the model resizes them to its input size')
    parser.add_argument('--out', help='folder for report.json and the PR plots')
    parser.add_argument('--iou', type=float, default=0.5, help='frame-AP IoU threshold')
    parser.add_argument('--trim', action='store_true',
                        help="trim tubes (ROAD's Viterbi + minimum length) before video-AP")
    parser.add_argument('--device', help="override the model's device ('cpu', 'cuda')")
    parser.add_argument('--bootstrap', type=int, default=0, metavar='N',
                        help='also print the standard deviation and 95 %% interval of '
                        'frame-mAP and video-mAP@0.5 over N draws of the videos with '
                        'replacement (default 0: none; 200 is plenty)')
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error(f'--count {args.count}: expected at least 1 video')
    if args.bootstrap < 0:
        parser.error(f'--bootstrap {args.bootstrap}: expected 0 (none) or more draws')
    if args.size < 16:
        parser.error(f'--size {args.size}: expected at least 16 pixels')
    public = None
    video_size = None           # the side of generated videos; None for read ones
    if args.dataset != 'motion':
        kind = KINDS[args.dataset]
        if not args.root:
            parser.error(f'--dataset {args.dataset}: expected --root, the {kind.title} folder')
        if args.data:
            parser.error(f'--data: not used with --dataset {args.dataset} (give --root)')
        if args.split not in ('train', 'test'):
            parser.error(f'--split {args.split}: expected train or test for {kind.title}')
        if not 0 <= args.split_index < kind.num_splits:
            parser.error(f'--split-index {args.split_index}: expected 0 .. '
                         f'{kind.num_splits - 1} ({kind.title} has {kind.num_splits} '
                         f'split{"s" if kind.num_splits > 1 else ""})')
        try:
            public = open_dataset(args.dataset, args.root, args.split, args.split_index)
        except (OSError, ValueError) as exc:
            parser.error(f'--dataset {args.dataset} --root {args.root}: {exc}')
        if args.count is not None:
            public = public.head(args.count)
    elif args.root or args.split_index:
        parser.error('--root and --split-index: expected with --dataset ucf24 or jhmdb only')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    detector = build_detector(checkpoint=args.model, device=args.device)
    if public is not None:
        if tuple(detector.class_names) != public.class_names:
            parser.error(f'--model {args.model}: its classes {list(detector.class_names)} are '
                         f'not the {public.kind.title} classes {list(public.class_names)}')
        videos = list(public.videos)
        gt = public.ground_truth()
        split = f'{args.dataset} {args.split} {args.split_index} ({args.root})'
    else:
        if args.data:
            from stal_ros.data.io import read_split
            videos = read_split(args.data)
            if args.count is not None:
                videos = videos[:args.count]
        else:
            video_size = args.size
            config = MotionConfig(height=video_size, width=video_size)
            videos = make_split(args.split, 100 if args.count is None else args.count, config)
        gt = ground_truth(videos)
        split = args.data or args.split
    numbers = evaluate(detector, videos, gt, tubes=TubeConfig(),
                       trim=TrimConfig() if args.trim else None, iou=args.iou,
                       bootstrap=args.bootstrap)
    report = print_report(numbers)
    if args.out:
        write_report(args.out, numbers, report, {
            'model': str(args.model), 'sha256': sha256(args.model),
            'config': detector.config.to_dict(), 'split': split, 'dataset': args.dataset,
            'count': len(videos), 'trim': args.trim,
            'video_size': video_size})
    return 0


if __name__ == '__main__':
    sys.exit(main())
