# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Motion-benchmark splits on disk: one compressed ``.npz`` per video plus ``index.json``.

A split directory holds ``<name with '/' -> '_'>.npz`` per video and ``index.json``
(``format``, ``class_names``, ``config``, and the parallel lists ``names``, ``files``,
``seeds``).  Every file is written under a temporary name and moved into place with
``os.replace``, and ``index.json`` is written last, so a directory with an index is complete.
Arrays of a video file (letters: T frames, M tubes, n frames of all tubes together, I idle
actors):

- ``name`` () str, ``seed`` () int64 (-1: unknown);
- ``frames`` (T, H, W, 3) uint8 RGB; ``flows`` (T - 1, H, W, 2) float16 (read back as
  float32; float16 keeps about 3 significant digits, 0.008 px at 10 px);
  ``flow_valid`` (T - 1, H, W) bool;
- ``tube_labels`` (M,) int64, ``tube_lengths`` (M,) int64, ``tube_frames`` (n,) int64,
  ``tube_boxes`` (n, 4) float32 (tubes concatenated in order);
- ``idle_boxes`` (I, T, 4) float32.

Files are read with ``allow_pickle=False``; a missing, truncated or malformed file raises an
error naming it.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Sequence
import zipfile
import zlib

import numpy as np

from stal_ros.data.motion import ActorTube, CLASS_NAMES, MotionConfig, MotionVideo

__all__ = ['FORMAT_VERSION', 'INDEX_NAME', 'read_index', 'read_split', 'read_video',
           'video_filename', 'write_index', 'write_split', 'write_video']

FORMAT_VERSION = 1
INDEX_NAME = 'index.json'
_KEYS = ('name', 'seed', 'frames', 'flows', 'flow_valid', 'tube_labels', 'tube_lengths',
         'tube_frames', 'tube_boxes', 'idle_boxes')
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)

PathLike = str | os.PathLike


def video_filename(name: str) -> str:
    """Return the file name of video ``name`` inside a split directory ('/' becomes '_')."""
    if not name or any(c in name for c in '\\:\0') or name.startswith('.'):
        raise ValueError(f'video name {name!r}: expected a non-empty name without \\ : or a '
                         'leading dot')
    return name.replace('/', '_') + '.npz'


def _atomic_write(path: pathlib.Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place."""
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_video(path: PathLike, video: MotionVideo) -> None:
    """Write one video to ``path`` (a compressed ``.npz``, atomically)."""
    if not isinstance(video, MotionVideo):
        raise TypeError(f'write_video: expected MotionVideo, got {type(video).__name__}')
    tubes = video.tubes
    arrays = {
        'name': np.array(video.name),
        'seed': np.array(-1 if video.seed is None else video.seed, np.int64),
        'frames': video.frames,
        'flows': video.flows.astype(np.float16),
        'flow_valid': video.flow_valid,
        'tube_labels': np.array([t.label for t in tubes], np.int64),
        'tube_lengths': np.array([t.frames.size for t in tubes], np.int64),
        'tube_frames': np.concatenate([t.frames for t in tubes] or [np.zeros(0, np.int64)]),
        'tube_boxes': np.concatenate([t.boxes for t in tubes]
                                     or [np.zeros((0, 4), np.float32)]),
        'idle_boxes': video.idle_boxes,
    }
    _atomic_write(pathlib.Path(path), lambda f: np.savez_compressed(f, **arrays))


def read_video(path: PathLike) -> MotionVideo:
    """Read one video written by ``write_video``; errors name the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: video file missing')
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _KEYS if k not in npz.files]
            if missing:
                raise ValueError(f'{path}: malformed video file, missing arrays {missing}')
            data = {k: npz[k] for k in _KEYS}
    except _READ_ERRORS as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f'{path}: unreadable video file (truncated or not an .npz?): '
                         f'{type(exc).__name__}: {exc}') from exc
    try:
        lengths = data['tube_lengths'].astype(np.int64)
        labels = data['tube_labels']
        frames, boxes = data['tube_frames'], data['tube_boxes']
        if lengths.shape != labels.shape or lengths.ndim != 1 or np.any(lengths < 1) or \
                lengths.sum() != frames.shape[0] or boxes.shape[:1] != frames.shape[:1]:
            raise ValueError(f'inconsistent tube arrays: labels {labels.shape}, lengths '
                             f'{lengths.tolist()}, frames {frames.shape}, boxes {boxes.shape}')
        cuts = np.cumsum(lengths)[:-1]
        tubes = tuple(ActorTube(int(lab), f, b) for lab, f, b in
                      zip(labels, np.split(frames, cuts), np.split(boxes, cuts)))
        seed = int(data['seed'])
        return MotionVideo(str(data['name']), data['frames'], data['flows'].astype(np.float32),
                           data['flow_valid'], tubes, data['idle_boxes'],
                           None if seed < 0 else seed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{path}: malformed video file: {exc}') from exc


def write_index(directory: PathLike, names: Sequence[str], seeds: Sequence[int | None],
                config: MotionConfig | None = None) -> pathlib.Path:
    """Write ``index.json`` of a split directory (atomically) and return its path."""
    if len(names) != len(seeds):
        raise ValueError(f'write_index: {len(names)} names but {len(seeds)} seeds')
    if len(set(names)) != len(names):
        raise ValueError('write_index: video names must be unique')
    index = {
        'format': FORMAT_VERSION,
        'class_names': list(CLASS_NAMES),
        'config': None if config is None else config.to_dict(),
        'names': list(names),
        'files': [video_filename(n) for n in names],
        'seeds': [None if s is None else int(s) for s in seeds],
    }
    path = pathlib.Path(directory) / INDEX_NAME
    text = json.dumps(index, indent=1).encode()
    _atomic_write(path, lambda f: f.write(text))
    return path


def write_split(directory: PathLike, videos: Sequence[MotionVideo],
                config: MotionConfig | None = None) -> pathlib.Path:
    """Write ``videos`` to ``directory`` (created if needed) and return the index path.

    Args:
        directory: the split directory.
        videos: the videos (unique names).
        config: the generator settings, recorded in ``index.json`` (None: unknown).
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    videos = list(videos)
    names = [v.name for v in videos]
    if len(set(names)) != len(names):
        raise ValueError('write_split: video names must be unique')
    for video in videos:
        write_video(directory / video_filename(video.name), video)
    return write_index(directory, names, [v.seed for v in videos], config)


def read_index(directory: PathLike) -> dict[str, Any]:
    """Read and check ``index.json`` of a split directory (class names must match)."""
    path = pathlib.Path(directory) / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(f'{path}: split index missing (is {directory} a benchmark '
                                'directory written by write_split / stal-make-benchmark?)')
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f'{path}: unreadable split index: {exc}') from exc
    if not isinstance(index, dict):
        raise ValueError(f'{path}: expected a JSON object')
    for key in ('format', 'class_names', 'names', 'files', 'seeds'):
        if key not in index:
            raise ValueError(f'{path}: missing key {key!r}')
    if index['format'] != FORMAT_VERSION:
        raise ValueError(f'{path}: format {index["format"]!r}, expected {FORMAT_VERSION}')
    if tuple(index['class_names']) != CLASS_NAMES:
        raise ValueError(f'{path}: class names {index["class_names"]} differ from this '
                         f'those of this version, {list(CLASS_NAMES)}')
    if not len(index['names']) == len(index['files']) == len(index['seeds']):
        raise ValueError(f'{path}: names, files and seeds differ in length')
    return index


def read_split(directory: PathLike) -> list[MotionVideo]:
    """Read every video of a split directory, in the order of its index."""
    directory = pathlib.Path(directory)
    index = read_index(directory)
    videos = []
    for name, file in zip(index['names'], index['files']):
        video = read_video(directory / file)
        if video.name != name:
            raise ValueError(f'{directory / file}: holds video {video.name!r}, the index says '
                             f'{name!r}')
        videos.append(video)
    return videos
