# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Read camera images and other messages from rosbag2 bags, write bags atomically.

Both storage formats (MCAP and sqlite3) are read, whoever wrote them (``ros2 bag record``,
``rosbags``, the ``mcap`` writer library).  Images are ``sensor_msgs/Image`` in every encoding
the node takes or ``sensor_msgs/CompressedImage`` (JPEG/PNG), decoded by the node's own numpy
code (``stal_ros.images``).  Every failure is a ``BagError`` naming the bag, and the topic when
there is one.  ``BagWriter`` writes into a hidden folder beside the target and renames it when
the bag is complete, so an interrupted run leaves no half-written bag.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import shutil
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError

from stal_ros.bags.types import register_from_bag, rosbags_types, typestore
from stal_ros.images import decode_compressed, decode_image
from stal_ros.messages import header, time_to_ns

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
IMAGE_TYPES = (IMAGE, COMPRESSED)
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be read or written; the message names the bag (and the topic)."""

    def __init__(self, path: str | os.PathLike, problem: str, topic: str | None = None) -> None:
        where = f'{path}' + (f', topic {topic}' if topic else '')
        super().__init__(f'{where}: {problem}')
        self.path = str(path)
        self.topic = topic


@dataclass(frozen=True)
class BagImage:
    """One camera image of a bag.

    Attributes:
        index: 0-based position among the topic's messages.
        stamp_ns: the image header's stamp (the camera's time).
        log_time_ns: when the message was recorded.
        frame_id: the header's frame_id.
        rgb: (H, W, 3) uint8 RGB.
    """

    index: int
    stamp_ns: int
    log_time_ns: int
    frame_id: str
    rgb: np.ndarray


class BagReader:
    """A rosbag2 bag opened for reading (a context manager).

    Args:
        path: the bag folder (``metadata.yaml`` + storage files) or a single ``.mcap`` file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(self.path, 'no such bag (expected a rosbag2 folder or an .mcap file)')
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except (ReaderError, OSError, ValueError, KeyError) as exc:
            raise BagError(self.path, f'cannot open the bag ({exc})') from None
        self.store = typestore()
        register_from_bag(self.store, [(c.msgtype, c.msgdef.data) for c in
                                       self._reader.connections if c.msgdef])

    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type of every topic in the bag."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def count(self, topic: str) -> int:
        """Return the number of messages on ``topic``."""
        return sum(c.msgcount for c in self._connections(topic, None))

    def _connections(self, topic: str, msgtypes: Sequence[str] | None) -> list[Any]:
        conns = [c for c in self._reader.connections if c.topic == topic]
        if not conns:
            known = ', '.join(f'{t} ({m})' for t, m in sorted(self.topics.items())) or 'none'
            raise BagError(self.path, f'no such topic; the bag has: {known}', topic)
        if msgtypes is not None:
            for conn in conns:
                if conn.msgtype not in msgtypes:
                    raise BagError(self.path, f'message type {conn.msgtype}, expected one of '
                                   f'{list(msgtypes)}', topic)
        for conn in conns:
            if conn.msgtype not in self.store.types:
                raise BagError(self.path, f'unknown message type {conn.msgtype} (the bag '
                               'carries no definition of it)', topic)
        return conns

    def raw_messages(self, topic: str, msgtypes: Sequence[str] | None = None
                     ) -> Iterator[tuple[int, str, bytes]]:
        """Yield ``(log_time_ns, msgtype, CDR bytes)`` of ``topic`` in recording order.

        Raises:
            BagError: the topic is missing or of another type, or the bag cannot be read
                (truncated or corrupt).
        """
        conns = self._connections(topic, msgtypes)
        try:
            for conn, log_time, raw in self._reader.messages(connections=conns):
                yield int(log_time), conn.msgtype, bytes(raw)
        except (ReaderError, OSError, ValueError, KeyError, EOFError) as exc:
            raise BagError(self.path, f'cannot read the messages ({type(exc).__name__}: '
                           f'{exc}); the bag may be truncated', topic) from None

    def messages(self, topic: str,
                 msgtypes: Sequence[str] | None = None) -> Iterator[tuple[int, str, Any]]:
        """Yield ``(log_time_ns, msgtype, message)`` of ``topic`` in recording order.

        Raises:
            BagError: as ``raw_messages``, or a message cannot be decoded.
        """
        for log_time, msgtype, raw in self.raw_messages(topic, msgtypes):
            try:
                msg = self.store.deserialize_cdr(raw, msgtype)
            except Exception as exc:  # noqa: B902 - any decoding failure is the bag's
                raise BagError(self.path, f'message at {log_time} ns cannot be decoded as '
                               f'{msgtype} ({exc})', topic) from None
            yield log_time, msgtype, msg

    def images(self, topic: str) -> Iterator[BagImage]:
        """Yield the images of ``topic`` (``Image`` or ``CompressedImage``) as RGB frames."""
        for index, (log_time, msgtype, msg) in enumerate(self.messages(topic, IMAGE_TYPES)):
            try:
                if msgtype == IMAGE:
                    rgb = decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step,
                                       bool(msg.is_bigendian))
                else:
                    rgb = decode_compressed(msg.data, msg.format)
            except ValueError as exc:
                raise BagError(self.path, f'image {index} (stamp '
                               f'{time_to_ns(msg.header.stamp)} ns): {exc}', topic) from None
            yield BagImage(index, time_to_ns(msg.header.stamp), int(log_time),
                           str(msg.header.frame_id), rgb)


class BagWriter:
    """Write a rosbag2 bag; the bag appears at ``path`` only when the writer closes cleanly.

    Args:
        path: the bag folder to create (must not exist).
        storage: ``'mcap'`` (ROS 2 Jazzy's default) or ``'sqlite3'``.
    """

    def __init__(self, path: str | os.PathLike, storage: str = 'mcap') -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(self.path, f'storage {storage!r}: expected one of {list(STORAGES)}')
        if self.path.exists():
            raise BagError(self.path, 'already exists; choose a new folder or remove it')
        self._partial = self.path.with_name(f'.{self.path.name}.partial')
        if self._partial.exists():
            shutil.rmtree(self._partial)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = typestore()
        self.storage = storage
        try:
            self._writer = Writer(self._partial, version=9, storage_plugin=STORAGES[storage])
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(self.path, f'cannot create the bag ({exc})') from None
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Write ``msg`` (a ``rosbags`` message) on ``topic`` at ``log_time_ns``."""
        msgtype = msg.__msgtype__
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(self.path, f'message type {msgtype}, but the topic holds '
                           f'{conn.msgtype}', topic)
        self._writer.write(conn, int(log_time_ns), self.store.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        """Finish the bag and move it to ``path``."""
        self._writer.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self._writer.close()
        finally:
            shutil.rmtree(self._partial, ignore_errors=True)


def image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str, *,
                  encoding: str = 'rgb8') -> Any:
    """Build a ``sensor_msgs/Image`` (rgb8 or bgr8) of an (H, W, 3) uint8 RGB frame."""
    if encoding not in ('rgb8', 'bgr8'):
        raise ValueError(f"encoding {encoding!r}: expected 'rgb8' or 'bgr8'")
    rgb = np.asarray(rgb, np.uint8)
    pixels = rgb if encoding == 'rgb8' else rgb[..., ::-1]
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(pixels).reshape(-1)
    return typestore().types[IMAGE](
        header=header(rosbags_types(), stamp_ns, frame_id), height=h, width=w,
        encoding=encoding, is_bigendian=0, step=3 * w, data=data)


def compressed_message(rgb: np.ndarray, stamp_ns: int, frame_id: str, *,
                       fmt: str = 'jpeg', quality: int = 95) -> Any:
    """Build a ``sensor_msgs/CompressedImage`` (JPEG or PNG) of an (H, W, 3) uint8 RGB frame."""
    if fmt not in ('jpeg', 'png'):
        raise ValueError(f"fmt {fmt!r}: expected 'jpeg' or 'png'")
    bgr = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == 'jpeg' else []
    ok, buf = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', bgr, params)
    if not ok:
        raise ValueError(f'cannot encode the frame as {fmt}')
    return typestore().types[COMPRESSED](
        header=header(rosbags_types(), stamp_ns, frame_id), format=fmt,
        data=buf.reshape(-1))
