# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Console commands of the synthetic motion benchmark.

``stal-make-benchmark --split test --count 50 --out DIR`` writes a split (one ``.npz`` per
video, then ``index.json``), streaming: memory stays at one video per worker.
``stal-show-benchmark DIR --out grid.png`` (or ``--split test --count 4`` to generate on the
fly) draws annotated frames.  Both also run as ``python -m stal_ros.data.cli make|show ...``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
import logging
import pathlib
import sys
import time
from typing import Sequence

import cv2

from stal_ros.config_base import ConfigError
from stal_ros.data.io import read_index, read_video, video_filename, write_index, write_video
from stal_ros.data.motion import CLASS_NAMES, make_video, MotionConfig, split_seeds, SPLITS
from stal_ros.data.show import grid_image

_LOG = logging.getLogger('stal_ros.data')


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = MotionConfig()
    parser.add_argument('--height', type=int, default=defaults.height,
                        help='frame height in pixels (default %(default)s)')
    parser.add_argument('--width', type=int, default=defaults.width,
                        help='frame width in pixels (default %(default)s)')
    parser.add_argument('--num-frames', type=int, default=defaults.num_frames,
                        help='frames per video (default %(default)s)')


def _config(args: argparse.Namespace) -> MotionConfig:
    return MotionConfig(height=args.height, width=args.width, num_frames=args.num_frames)


def _make_one(task: tuple[int, int, str, pathlib.Path, MotionConfig]) -> tuple[str, int, list]:
    """Generate and write one video; return its name, seed and tube labels."""
    index, seed, split, out, config = task
    name = f'{split}/{index:06d}'
    video = make_video(seed, config, name)
    write_video(out / video_filename(name), video)
    return name, seed, [t.label for t in video.tubes]


def make_main(argv: Sequence[str] | None = None) -> int:
    """Write a split of the synthetic motion benchmark (``stal-make-benchmark``)."""
    parser = argparse.ArgumentParser(
        prog='stal-make-benchmark', description='Write a split of the synthetic motion '
        'benchmark: one .npz per video (frames, exact flows, tubes) and index.json.')
    parser.add_argument('--split', choices=sorted(SPLITS), default='test',
                        help='split, i.e. seed range (default %(default)s)')
    parser.add_argument('--count', type=int, default=50, help='videos (default %(default)s)')
    parser.add_argument('--out', type=pathlib.Path, required=True, help='output directory')
    _add_config_arguments(parser)
    parser.add_argument('--workers', type=int, default=1,
                        help='processes generating videos in parallel (default %(default)s)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    try:
        config = _config(args)
        seeds = split_seeds(args.split, args.count)
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    if args.workers < 1:
        parser.error(f'--workers: expected >= 1, got {args.workers}')
    args.out.mkdir(parents=True, exist_ok=True)
    tasks = [(i, seed, args.split, args.out, config) for i, seed in enumerate(seeds)]
    start = time.perf_counter()
    results = []
    if args.workers == 1:
        results = [_make_one(task) for task in tasks]
    else:
        # One OpenCV thread per process: the workers already fill the cores.
        with ProcessPoolExecutor(args.workers, initializer=cv2.setNumThreads,
                                 initargs=(1,)) as pool:
            results = list(pool.map(_make_one, tasks, chunksize=8))
    elapsed = time.perf_counter() - start
    index = write_index(args.out, [r[0] for r in results], [r[1] for r in results], config)
    counts = Counter(label for r in results for label in r[2])
    _LOG.info('%d videos (%d x %d, %d frames) in %.1f s (%.3f s per video) -> %s',
              len(results), config.width, config.height, config.num_frames, elapsed,
              elapsed / max(len(results), 1), index)
    _LOG.info('tubes per class: %s',
              ', '.join(f'{name} {counts[k]}' for k, name in enumerate(CLASS_NAMES)))
    return 0


def show_main(argv: Sequence[str] | None = None) -> int:
    """Draw annotated frames of benchmark videos to a PNG (``stal-show-benchmark``)."""
    parser = argparse.ArgumentParser(
        prog='stal-show-benchmark', description='Draw a grid of annotated frames (rows = '
        'videos) of a split directory, or of videos generated on the fly with --split.')
    parser.add_argument('directory', nargs='?', type=pathlib.Path,
                        help='split directory written by stal-make-benchmark')
    parser.add_argument('--split', choices=sorted(SPLITS),
                        help='generate videos of this split instead of reading a directory')
    parser.add_argument('--count', type=int, default=4, help='videos shown (default '
                        '%(default)s)')
    parser.add_argument('--frames', type=int, default=4,
                        help='frames per video (default %(default)s)')
    parser.add_argument('--out', type=pathlib.Path, required=True, help='output PNG')
    parser.add_argument('--no-flow', action='store_true', help='leave out the flow insets')
    _add_config_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if (args.directory is None) == (args.split is None):
        parser.error('expected either a split directory or --split')
    if args.count < 1 or args.frames < 1:
        parser.error('--count and --frames: expected >= 1')
    try:
        if args.split is not None:
            config = _config(args)
            videos = [make_video(seed, config, f'{args.split}/{i:06d}')
                      for i, seed in enumerate(split_seeds(args.split, args.count))]
        else:
            index = read_index(args.directory)
            videos = [read_video(args.directory / f) for f in index['files'][:args.count]]
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        _LOG.error('%s', exc)
        return 1
    grid = grid_image(videos, args.frames, flow_inset=not args.no_flow)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        _LOG.error('%s: could not write the image', args.out)
        return 1
    _LOG.info('%d videos x %d frames -> %s (%d x %d)', len(videos), args.frames, args.out,
              grid.shape[1], grid.shape[0])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``make`` / ``show`` (``python -m stal_ros.data.cli make|show ...``)."""
    parser = argparse.ArgumentParser(
        prog='python -m stal_ros.data.cli', description='Synthetic motion benchmark: write '
        'a split (make = stal-make-benchmark) or draw videos (show = stal-show-benchmark).')
    parser.add_argument('command', choices=('make', 'show'), help='what to do')
    parser.add_argument('arguments', nargs=argparse.REMAINDER,
                        help='arguments of the command (make -h / show -h)')
    args = parser.parse_args(argv)
    return {'make': make_main, 'show': show_main}[args.command](args.arguments)


if __name__ == '__main__':
    sys.exit(main())
