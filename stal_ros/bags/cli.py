# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``stal-bag``: write benchmark videos or video files as bags, inspect bags, evaluate offline.

    stal-bag write --split test --count 20 --out bags/test          # one bag per video, + GT
    stal-bag write --video clip.mp4 --out bags/clip                  # a video file, no GT
    stal-bag info bags/test/test_000000
    stal-bag eval bags/test --model models/lite_dis.pt --out reports/test_bags

Bags are rosbag2 folders (MCAP by default, ``--storage sqlite3``), one video per bag, with the
camera on ``--topic`` (``sensor_msgs/Image`` rgb8, or ``CompressedImage`` JPEG with
``--compressed``) and, for benchmark videos, the ground truth on ``/ground_truth/tubes``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
import sys
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from stal_ros.bags.io import BagError, BagReader, BagWriter, compressed_message, image_message
from stal_ros.bags.score import ground_truth_messages, GT_TOPIC, score
from stal_ros.bags.types import rosbags_types

LOG = logging.getLogger('stal_ros.bags')
DEFAULT_TOPIC = '/camera/image_raw'
DEFAULT_START_S = 1_767_225_600   # 2026-01-01T00:00:00Z: stamps of written bags start here


def bag_name(video: str) -> str:
    """Folder name of a video's bag (``'test/000012'`` -> ``'test_000012'``)."""
    return video.replace('/', '_')


def write_video_bag(path: str | os.PathLike, frames: Any, *, topic: str = DEFAULT_TOPIC,
                    frame_id: str = 'camera', fps: float = 10.0,
                    start_ns: int = DEFAULT_START_S * 10**9, tubes: Sequence[Any] | None = None,
                    class_names: Sequence[str] = (), compressed: bool = False,
                    storage: str = 'mcap') -> int:
    """Write one video as a bag: its frames on ``topic`` and, if given, its ground truth.

    Args:
        path: the new bag folder.
        frames: an iterable of (H, W, 3) uint8 RGB frames.
        topic: the camera topic.
        frame_id: the images' frame id.
        fps: frame rate: frame t is stamped (and logged) at ``start_ns + t / fps``.
        start_ns: stamp of the first frame.
        tubes: ground-truth tubes (``label``, 0-based ``frames``, xyxy ``boxes``), or None.
        class_names: the classes the labels index (with ``tubes``).
        compressed: JPEG ``CompressedImage`` instead of rgb8 ``Image``.
        storage: ``'mcap'`` or ``'sqlite3'``.

    Returns:
        The number of frames written.
    """
    if not fps > 0:
        raise ValueError(f'fps = {fps!r}: expected > 0')
    stamps = []
    with BagWriter(path, storage) as bag:
        for t, rgb in enumerate(frames):
            stamp = int(start_ns) + int(round(t * 1e9 / fps))
            stamps.append(stamp)
            msg = (compressed_message(rgb, stamp, frame_id) if compressed
                   else image_message(rgb, stamp, frame_id))
            bag.write(topic, stamp, msg)
        if tubes is not None:
            gt = ground_truth_messages(rosbags_types(), tubes, stamps, frame_id, class_names)
            for stamp, msg in zip(stamps, gt):
                bag.write(GT_TOPIC, stamp, msg)
    return len(stamps)


def read_video_file(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield the frames of a video file (anything OpenCV reads) as (H, W, 3) uint8 RGB."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f'{path}: cannot open the video file')
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def find_bags(paths: Sequence[str]) -> list[Path]:
    """Expand the arguments into bags: a bag folder, an .mcap file, or a folder of bags."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if (path / 'metadata.yaml').is_file() or path.suffix == '.mcap':
            out.append(path)
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if (p / 'metadata.yaml').is_file())
            if not inner:
                raise BagError(path, 'neither a bag (no metadata.yaml) nor a folder of bags')
            out += inner
        else:
            raise BagError(path, 'no such bag (expected a rosbag2 folder, an .mcap file or a '
                           'folder of bags)')
    return out


def _write(args: argparse.Namespace) -> int:
    common = {'topic': args.topic, 'frame_id': args.frame_id, 'fps': args.fps,
              'compressed': args.compressed, 'storage': args.storage}
    if args.video:
        n = write_video_bag(args.out, read_video_file(args.video), **common)
        LOG.info('wrote %s (%d frames, no ground truth)', args.out, n)
        return 0
    from stal_ros.data.motion import CLASS_NAMES, make_split, MotionConfig
    if args.data:
        from stal_ros.data.io import read_split
        videos = read_split(args.data)
    else:
        videos = make_split(args.split, args.count, MotionConfig(height=args.size,
                                                                 width=args.size))
    out = Path(args.out)
    for video in videos:
        path = out / bag_name(video.name)
        n = write_video_bag(path, video.frames, tubes=video.tubes, class_names=CLASS_NAMES,
                            **common)
        LOG.info('wrote %s (%d frames, %d ground-truth tubes)', path, n, len(video.tubes))
    return 0


def _info(args: argparse.Namespace) -> int:
    for path in find_bags(args.bags):
        with BagReader(path) as bag:
            sys.stdout.write(f'{path}\n')
            for topic, msgtype in sorted(bag.topics.items()):
                sys.stdout.write(f'  {topic}  {msgtype}  {bag.count(topic)} messages\n')
    return 0


def _eval(args: argparse.Namespace) -> int:
    from stal_ros.bags.offline import outputs_of, raw_frame_map, run_bag
    from stal_ros.config import TubeConfig
    from stal_ros.evaluate import evaluation_tubes_config, print_report, sha256, write_report
    from stal_ros.net.detector import build_detector
    from stal_ros.config import OutputConfig
    bags = find_bags(args.bags)
    if args.gt and len(bags) != 1:
        raise SystemExit(f'--gt: a ground-truth file is for one bag, got {len(bags)} bags')
    detector = build_detector(checkpoint=args.model, device=args.device)
    runs, outputs = [], []
    for path in bags:
        with BagReader(path) as bag:
            length = bag.count(args.topic)
        tubes = evaluation_tubes_config(TubeConfig(), length)
        results = Path(args.results) / path.name if args.results else None
        run = run_bag(detector, path, args.topic, tubes,
                      max_history=OutputConfig().max_history, results=results,
                      storage=args.storage, progress=not args.no_progress)
        runs.append(run)
        outputs.append(outputs_of(run, detector.class_names, args.gt))
    numbers = score(outputs, detector.class_names, iou=args.iou)
    frames = sum(len(r.index) for r in runs)
    numbers['seconds_per_frame'] = sum(r.seconds for r in runs) / max(frames, 1)
    report = print_report(numbers)
    report['frame_map_raw'] = raw_frame_map(runs, outputs, detector.class_names, args.iou)
    report['frames_published'] = sum(o.published for o in outputs)
    sys.stdout.write(f"raw-detection frame-mAP@{args.iou:g} {report['frame_map_raw']:.4f}; "
                     f"{report['frames_published']} of {frames} frames published\n")
    if args.out:
        write_report(args.out, numbers, report, {
            'mode': 'offline', 'model': str(args.model), 'sha256': sha256(args.model),
            'config': detector.config.to_dict(), 'bags': [str(b) for b in bags],
            'topic': args.topic})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``stal-bag``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0].replace('``', ''))
    sub = parser.add_subparsers(dest='command', required=True)
    write = sub.add_parser('write', help='write benchmark videos or a video file as bags')
    source = write.add_mutually_exclusive_group()
    source.add_argument('--split', default='test', choices=('train', 'val', 'test'),
                        help='benchmark split generated from its seeds (default test)')
    source.add_argument('--data', help='a split folder written by stal-make-benchmark')
    source.add_argument('--video', help='a video file (one bag, no ground truth)')
    write.add_argument('--count', type=int, default=10, help='videos of the split (default 10)')
    write.add_argument('--size', type=int, default=128, help='generated frame side (128)')
    write.add_argument('--out', required=True,
                       help='folder of the bags (one per video), or the bag of --video')
    write.add_argument('--topic', default=DEFAULT_TOPIC, help=f'camera topic ({DEFAULT_TOPIC})')
    write.add_argument('--frame-id', default='camera', help='image frame_id (camera)')
    write.add_argument('--fps', type=float, default=10.0, help='frame rate of the stamps (10)')
    write.add_argument('--compressed', action='store_true',
                       help='JPEG sensor_msgs/CompressedImage instead of rgb8 Image')
    write.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'))
    info = sub.add_parser('info', help='list the topics of bags')
    info.add_argument('bags', nargs='+', help='bags or folders of bags')
    ev = sub.add_parser('eval', help='run the pipeline over bags and score it (no DDS)')
    ev.add_argument('bags', nargs='+', help='bags or folders of bags (one video per bag)')
    ev.add_argument('--model', required=True, help='checkpoint (.pt)')
    ev.add_argument('--topic', default=DEFAULT_TOPIC, help=f'camera topic ({DEFAULT_TOPIC})')
    ev.add_argument('--gt', help='ground-truth JSON for a bag without /ground_truth/tubes')
    ev.add_argument('--out', help='folder for report.json and the PR plots')
    ev.add_argument('--results', help='folder to write result bags into (one per input bag)')
    ev.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'),
                    help='storage of the result bags')
    ev.add_argument('--iou', type=float, default=0.5, help='frame-AP IoU threshold')
    ev.add_argument('--device', help="override the model's device ('cpu', 'cuda')")
    ev.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    try:
        return {'write': _write, 'info': _info, 'eval': _eval}[args.command](args)
    except (BagError, ValueError) as exc:
        sys.stderr.write(f'stal-bag {args.command}: {exc}\n')
        return 2


if __name__ == '__main__':
    sys.exit(main())
