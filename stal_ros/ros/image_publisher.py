# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``stal_image_publisher``: a video file, an image folder or a V4L2 device as a live camera.

    stal_image_publisher clip.mp4 --rate 25 --loop
    stal_image_publisher frames/ --topic /camera/image_raw --compressed jpeg
    stal_image_publisher /dev/video0

Publishes ``sensor_msgs/Image`` (bgr8, as OpenCV reads it) or ``sensor_msgs/CompressedImage``
(``<topic>/compressed``, JPEG or PNG) with real header stamps (the node clock at capture).  It
runs with the shipped Fast DDS profile (``config/fastdds_profile.xml``, a large shared-memory
segment) unless ``--no-fastdds-profile``, so best-effort subscribers get large frames too.
"""

from __future__ import annotations

import argparse
import array
import logging
import os
import pathlib
import sys
import time
from typing import Iterator, Sequence

import cv2
import numpy as np

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
LOG = logging.getLogger('stal_image_publisher')


def open_source(source: str) -> tuple[Iterator[np.ndarray], float | None]:
    """Open a folder of images, a video file or a V4L2 device.

    Returns:
        An iterator of (H, W, 3) uint8 BGR frames (one pass) and the source's frame rate
        (None when unknown: images or a device that does not say).

    Raises:
        ValueError: the source does not exist or cannot be opened.
    """
    path = pathlib.Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f'{source}: expected image files ({", ".join(IMAGE_SUFFIXES)}), '
                             'found none')
        return _images(files), None
    device = int(source) if source.isdigit() else source
    if not source.isdigit() and not path.exists():
        raise ValueError(f'{source}: expected a video file, an image folder or /dev/videoN; '
                         'it does not exist')
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise ValueError(f'{source}: OpenCV cannot open it as a video or camera')
    fps = capture.get(cv2.CAP_PROP_FPS)
    return _video(capture), (fps if fps and fps > 0 and fps < 1000 else None)


def _images(files: Sequence[pathlib.Path]) -> Iterator[np.ndarray]:
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            LOG.warning('%s: cannot be read as an image, skipped', path)
            continue
        yield image


def _video(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image
    finally:
        capture.release()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (ROS arguments after ``--ros-args`` are left to rclpy)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='video file, folder of images, /dev/videoN or N')
    parser.add_argument('--topic', default='image', help='Image topic (default: image)')
    parser.add_argument('--rate', type=float, default=0.0,
                        help="frames per second (default: the video's rate, else 10)")
    parser.add_argument('--loop', action='store_true', help='start again at the end')
    parser.add_argument('--count', type=int, default=0, help='stop after N frames (0: never)')
    parser.add_argument('--compressed', choices=('jpeg', 'png'),
                        help='publish CompressedImage on <topic>/compressed')
    parser.add_argument('--frame-id', default='camera', help='header.frame_id')
    parser.add_argument('--reliability', choices=('reliable', 'best_effort'),
                        default='reliable', help='publisher QoS reliability')
    parser.add_argument('--wait', type=float, default=0.0,
                        help='seconds to wait for a subscriber before publishing')
    parser.add_argument('--no-fastdds-profile', action='store_true',
                        help='do not use config/fastdds_profile.xml')
    args = list(sys.argv[1:] if argv is None else argv)
    if '--ros-args' in args:
        args = args[:args.index('--ros-args')]
    parsed = parser.parse_args(args)
    if parsed.rate < 0:
        parser.error(f'--rate {parsed.rate}: expected >= 0')
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    """Publish the frames; 0 at the end of the source (or --count), 1 on errors."""
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    args = parse_args(argv)
    if not args.no_fastdds_profile:
        from stal_ros.ros.launch_spec import fastdds_env
        for key, value in fastdds_env().items():   # read by Fast DDS when rclpy starts
            os.environ.setdefault(key, value)
    try:
        frames, fps = open_source(args.source)
    except ValueError as exc:
        LOG.error('%s', exc)
        return 1
    rate = args.rate or fps or 10.0

    import rclpy
    from rclpy.duration import Duration
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header

    rclpy.init(args=sys.argv if argv is None else None)
    node = rclpy.create_node('stal_image_publisher')
    reliability = (ReliabilityPolicy.RELIABLE if args.reliability == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    qos = QoSProfile(depth=5, reliability=reliability)
    if args.compressed:
        pub = node.create_publisher(CompressedImage, args.topic.rstrip('/') + '/compressed',
                                    qos)
    else:
        pub = node.create_publisher(Image, args.topic, qos)
    deadline = time.monotonic() + args.wait
    while args.wait and pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    node.get_logger().info(f'publishing {args.source} on {pub.topic_name} at {rate:g} Hz '
                           f'({args.compressed or "bgr8"}, {args.reliability})')
    sent = 0
    period = 1.0 / rate
    next_time = time.monotonic()
    try:
        while rclpy.ok():
            for image in frames:
                header = Header(stamp=node.get_clock().now().to_msg(), frame_id=args.frame_id)
                if args.compressed:
                    ok, data = cv2.imencode('.jpg' if args.compressed == 'jpeg' else '.png',
                                            image)
                    pub.publish(CompressedImage(header=header, format=args.compressed,
                                                data=array.array('B', data.tobytes())))
                else:
                    height, width = image.shape[:2]
                    pub.publish(Image(header=header, height=height, width=width,
                                      encoding='bgr8', step=width * 3,
                                      data=array.array('B', image.tobytes())))
                sent += 1
                if args.count and sent >= args.count:
                    return 0
                next_time += period
                time.sleep(max(0.0, next_time - time.monotonic()))
            if not args.loop:
                return 0
            frames, _ = open_source(args.source)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        node.get_logger().info(f'{sent} frames published')
        if reliability == ReliabilityPolicy.RELIABLE and rclpy.ok():
            # Destroying the writer drops samples not yet acknowledged: the last frames would
            # never arrive.  Give the subscribers a moment to take them.
            pub.wait_for_all_acked(Duration(seconds=2.0))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
