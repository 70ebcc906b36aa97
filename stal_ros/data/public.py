# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Readers of the public action data sets UCF101-24 and JHMDB-21 in ACT's format.

Both sets are distributed as frame folders and one annotation pickle of ACT (Kalogeiton et al.
2017): ``UCF101v2-GT.pkl`` (the corrected UCF101-24 annotations of Singh et al. 2017, one
split) and ``JHMDB-GT.pkl`` (JHMDB-21, three splits).  The pickle holds a dict:

* ``labels``: the K class names;
* ``gttubes``: video -> class index -> list of (n, 5) arrays (frame 1-based, x1, y1, x2, y2
  inclusive pixels);
* ``nframes``: video -> number of frames; ``resolution``: video -> (height, width);
* ``train_videos``, ``test_videos``: one list of video names per split.

The pickles are Python-2 files; they are read with ``ActUnpickler``, which refuses every
global but numpy's array and scalar reconstruction (the project never unpickles arbitrary
objects).  Frames are read lazily from ``<root>/Frames/<video>/00001.jpg`` (UCF101-24) or
``.png`` (JHMDB-21), or ROAD's ``<root>/rgb-images/<video>/00001.jpg``; video names hold the
class folder (``Basketball/v_Basketball_g01_c01``).

The videos of ``open_dataset`` are what ``ClipDataset`` and ``evaluate.run_video`` take: tubes
with 0-based frame indices and continuous pixel xyxy boxes (``GroundTruth.from_act`` adds the
1 to x2 and y2, the one place this is converted), frames (T, H, W, 3) uint8 RGB read on access.
Letters: T frames, H x W image, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path, PurePosixPath
import pickle
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np

from stal_ros.metrics.annotations import GroundTruth, GroundTruthTube, VideoAnnotations

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar


@dataclass(frozen=True)
class DatasetKind:
    """What differs between the public sets.

    Attributes:
        key: the name used by configs and flags ('ucf24', 'jhmdb').
        title: the data set's name in messages.
        annotations: ACT's annotation file name, looked for in the root folder.
        extension: the frame files' extension (the other one is tried when missing).
        num_splits: the number of train/test splits.
    """

    key: str
    title: str
    annotations: str
    extension: str
    num_splits: int


KINDS: dict[str, DatasetKind] = {
    'ucf24': DatasetKind('ucf24', 'UCF101-24', 'UCF101v2-GT.pkl', '.jpg', 1),
    'jhmdb': DatasetKind('jhmdb', 'JHMDB-21', 'JHMDB-GT.pkl', '.png', 3),
}
FRAME_FOLDERS = ('Frames', 'rgb-images')  # ACT's layout, ROAD's layout
SPLITS = ('train', 'test')

# The only globals an ACT annotation pickle needs: numpy arrays, dtypes and scalars (under the
# module names of numpy 1 and 2) and, for files re-saved by Python 3 with protocol 2, the
# latin-1 encoding of the array bytes.  Nothing that can run code or touch files.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, '_reconstruct'): _reconstruct
       for module in ('numpy.core.multiarray', 'numpy._core.multiarray')},
    **{(module, 'scalar'): scalar
       for module in ('numpy.core.multiarray', 'numpy._core.multiarray')},
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('_codecs', 'encode'): __import__('_codecs').encode,
}


class RefusedPickleError(pickle.UnpicklingError, ValueError):
    """An annotation pickle names a global that ``ActUnpickler`` does not allow."""


class ActUnpickler(pickle.Unpickler):
    """Unpickler of ACT's annotation files that refuses every global but numpy's arrays.

    Args:
        file: the open binary file.
        path: its path, for the messages.
    """

    def __init__(self, file: Any, path: str | os.PathLike) -> None:
        super().__init__(file, encoding='latin1')
        self.path = str(path)

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global; raise ``RefusedPickleError`` for any other."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickleError(
                f'{self.path}: refused to load the global {module}.{name}; an ACT annotation '
                'file holds only dicts, lists, strings, numbers and numpy arrays (is it the '
                'right file?)') from None


def read_pickle(path: str | os.PathLike) -> Any:
    """Read a pickle with ``ActUnpickler`` (Python-2 strings decoded as latin-1).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RefusedPickleError: (a ValueError) the file names a global other than numpy's array
            reconstruction; nothing it names is imported or called.
        ValueError: the file is not a readable pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: annotation file not found')
    with path.open('rb') as f:
        try:
            return ActUnpickler(f, path).load()
        except RefusedPickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError) as exc:
            raise ValueError(f'{path}: not a readable annotation pickle ({exc})') from exc


@dataclass(frozen=True)
class ActAnnotations:
    """The checked content of an ACT annotation file.

    Attributes:
        path: the file.
        labels: the K class names.
        gttubes: video -> class index -> list of (n, 5) float64 arrays (frame 1-based, x1, y1,
            x2, y2 inclusive pixels), as in the file.
        nframes: video -> T.
        train_videos: per split, the training videos.
        test_videos: per split, the test videos.
        resolution: video -> (H, W), empty when the file has none.
    """

    path: Path
    labels: tuple[str, ...]
    gttubes: dict[str, dict[int, list[np.ndarray]]]
    nframes: dict[str, int]
    train_videos: tuple[tuple[str, ...], ...]
    test_videos: tuple[tuple[str, ...], ...]
    resolution: dict[str, tuple[int, int]] = field(default_factory=dict)

    def videos(self, split: str, split_index: int) -> tuple[str, ...]:
        """Return the videos of ``split`` ('train' or 'test') number ``split_index``."""
        lists = self.train_videos if split == 'train' else self.test_videos
        return lists[split_index]


def _int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def _video_name(where: str, name: Any) -> str:
    """Check that a video name is a relative path inside the frame folder."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'{where}: expected a video name (str), got {name!r}')
    parts = PurePosixPath(name).parts
    if name.startswith('/') or '..' in parts or '\\' in name:
        raise ValueError(f'{where}: video name {name!r} is not a relative folder name')
    return name


def _split_lists(path: Path, data: Mapping[str, Any], key: str) -> tuple[tuple[str, ...], ...]:
    lists = data[key]
    if isinstance(lists, Mapping):  # {0: [...], 1: [...]} is read like a list
        keys = sorted(lists)
        if keys != list(range(len(keys))):
            raise ValueError(f'{path}: {key} has keys {keys}, expected 0 .. n - 1')
        lists = [lists[k] for k in keys]
    if not isinstance(lists, (list, tuple)) or not lists or \
            not all(isinstance(v, (list, tuple)) for v in lists):
        raise ValueError(f'{path}: {key}: expected a list of lists of video names (one per '
                         f'split), got {type(lists).__name__}')
    nframes = data['nframes']
    out = []
    for i, videos in enumerate(lists):
        names = tuple(_video_name(f'{path}: {key}[{i}]', v) for v in videos)
        for v in names:
            if v not in nframes:
                raise ValueError(f'{path}: {key}[{i}] lists video {v!r}, which has no nframes '
                                 'entry')
        out.append(names)
    return tuple(out)


def load_annotations(path: str | os.PathLike) -> ActAnnotations:
    """Read and check an ACT annotation file (``UCF101v2-GT.pkl``, ``JHMDB-GT.pkl``).

    Raises:
        FileNotFoundError: no such file.
        RefusedPickleError: the file names a global that is not numpy's array reconstruction.
        ValueError: the content is not shaped like ACT's (the message names the entry).
    """
    path = Path(path)
    data = read_pickle(path)
    if not isinstance(data, Mapping):
        raise ValueError(f'{path}: expected a dict, got {type(data).__name__}')
    missing = [k for k in ('labels', 'gttubes', 'nframes', 'train_videos', 'test_videos')
               if k not in data]
    if missing:
        raise ValueError(f'{path}: missing entries {missing}; expected an ACT annotation '
                         'file (labels, gttubes, nframes, train_videos, test_videos)')
    labels = data['labels']
    if not isinstance(labels, (list, tuple)) or not labels or \
            not all(isinstance(n, str) and n for n in labels):
        raise ValueError(f'{path}: labels: expected a non-empty list of class names')
    if len(set(labels)) != len(labels):
        raise ValueError(f'{path}: labels: expected distinct class names, got {list(labels)}')
    if not isinstance(data['nframes'], Mapping):
        raise ValueError(f'{path}: nframes: expected a dict video -> number of frames')
    nframes = {}
    for v, n in data['nframes'].items():
        v = _video_name(f'{path}: nframes', v)
        if _int(n) is None or n < 1:
            raise ValueError(f'{path}: nframes[{v!r}] = {n!r}: expected an int >= 1')
        nframes[v] = int(n)
    if not isinstance(data['gttubes'], Mapping):
        raise ValueError(f'{path}: gttubes: expected a dict video -> class -> tubes')
    gttubes: dict[str, dict[int, list[np.ndarray]]] = {}
    for v, per_class in data['gttubes'].items():
        if v not in nframes:
            raise ValueError(f'{path}: gttubes has video {v!r}, which has no nframes entry')
        if not isinstance(per_class, Mapping):
            raise ValueError(f'{path}: gttubes[{v!r}]: expected a dict class -> tubes')
        gttubes[v] = {}
        for label, arrays in per_class.items():
            k = _int(label)
            if k is None or not 0 <= k < len(labels):
                raise ValueError(f'{path}: gttubes[{v!r}] has class {label!r}, expected an '
                                 f'index in [0, {len(labels)})')
            if not isinstance(arrays, (list, tuple)):
                arrays = [arrays]
            tubes = []
            for arr in arrays:
                arr = np.asarray(arr, np.float64)
                if arr.ndim != 2 or arr.shape[1] != 5 or arr.shape[0] == 0:
                    raise ValueError(f'{path}: gttubes[{v!r}][{k}]: expected (n, 5) rows '
                                     f'(frame, x1, y1, x2, y2), got shape {arr.shape}')
                first, last = arr[:, 0].min(), arr[:, 0].max()
                if first < 1 or last > nframes[v]:
                    raise ValueError(f'{path}: gttubes[{v!r}][{k}]: frames {first:g} .. '
                                     f'{last:g}, expected 1 .. nframes = {nframes[v]}')
                tubes.append(arr)
            gttubes[v][k] = tubes
    resolution: dict[str, tuple[int, int]] = {}
    raw = data.get('resolution') or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f'{path}: resolution: expected a dict video -> (height, width)')
    for v, hw in raw.items():
        size = tuple(_int(x) for x in hw) if isinstance(hw, (list, tuple)) else ()
        if len(size) != 2 or any(x is None or x < 1 for x in size):
            raise ValueError(f'{path}: resolution[{v!r}] = {hw!r}: expected (height, width)')
        resolution[v] = size
    train, test = _split_lists(path, data, 'train_videos'), _split_lists(path, data, 'test_videos')
    if len(train) != len(test):
        raise ValueError(f'{path}: {len(train)} train_videos lists but {len(test)} test_videos '
                         'lists, expected one of each per split')
    for i, (a, b) in enumerate(zip(train, test)):
        both = sorted(set(a) & set(b))
        if both:
            raise ValueError(f'{path}: split {i} lists {both[0]!r} (and {len(both) - 1} '
                             'more) in both train_videos and test_videos')
    return ActAnnotations(path=path, labels=tuple(labels), gttubes=gttubes, nframes=nframes,
                          train_videos=train, test_videos=test, resolution=resolution)


class FrameSequence:
    """The frames of one video, read from image files on access (``video.frames``).

    Indexing with an int gives one (H, W, 3) uint8 RGB frame, with a slice a (n, H, W, 3)
    array; ``shape`` is (T, H, W, 3) without reading any frame when the size is known.

    Args:
        paths: the T frame files, in order.
        size: (H, W) of every frame, or None to take it from the first frame.
        name: the video, for the messages.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: Sequence[str | os.PathLike], size: tuple[int, int] | None = None,
                 name: str = '') -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError(f'FrameSequence({name!r}): expected at least one frame file')
        self.name = name
        self._size = None if size is None else (int(size[0]), int(size[1]))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, 3)."""
        if self._size is None:
            self._size = self._read(0, check=False).shape[:2]
        return (len(self.paths), self._size[0], self._size[1], 3)

    def __len__(self) -> int:
        """Return T."""
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the (H, W, 3) frames in order."""
        for t in range(len(self.paths)):
            yield self._read(t)

    def __getitem__(self, index: int | slice) -> np.ndarray:
        """One (H, W, 3) frame for an int, (n, H, W, 3) frames for a slice."""
        if isinstance(index, slice):
            frames = [self._read(t) for t in range(*index.indices(len(self.paths)))]
            if not frames:
                _, h, w, c = self.shape
                return np.zeros((0, h, w, c), np.uint8)
            return np.stack(frames)
        t = _int(index)
        if t is None:
            raise TypeError(f'FrameSequence({self.name!r}): expected an int or a slice, got '
                            f'{type(index).__name__}')
        if not -len(self.paths) <= t < len(self.paths):
            raise IndexError(f'FrameSequence({self.name!r}): frame {t} out of range for '
                             f'{len(self.paths)} frames')
        return self._read(t % len(self.paths))

    def _read(self, t: int, check: bool = True) -> np.ndarray:
        path = self.paths[t]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            if not path.is_file():
                raise FileNotFoundError(f'{path}: frame {t} of video {self.name!r} is missing')
            raise ValueError(f'{path}: frame {t} of video {self.name!r} cannot be decoded')
        if check and self._size is not None and image.shape[:2] != self._size:
            raise ValueError(f'{path}: frame {t} of video {self.name!r} is '
                             f'{image.shape[1]} x {image.shape[0]} pixels, expected '
                             f'{self._size[1]} x {self._size[0]} (the annotated resolution)')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True, eq=False)
class PublicVideo:
    """One video of a public data set, shaped like ``motion.MotionVideo`` for training.

    Attributes:
        name: ACT's video name (``<class folder>/<video>``).
        frames: (T, H, W, 3) uint8 RGB, read lazily.
        tubes: the ground-truth tubes: 0-based frame indices, continuous pixel xyxy boxes.
        flows: always None (the public sets carry no exact flow).
    """

    name: str
    frames: FrameSequence
    tubes: tuple[GroundTruthTube, ...]
    flows: None = None

    @property
    def num_frames(self) -> int:
        """Return T."""
        return len(self.frames)


@dataclass(frozen=True, eq=False)
class PublicDataset:
    """One split of a public data set.

    Attributes:
        kind: its description (``KINDS[key]``).
        root: the data set folder.
        split: 'train' or 'test'.
        split_index: which of the data set's splits.
        class_names: the K class names of the annotation file.
        videos: the videos of the split, in the file's order.
    """

    kind: DatasetKind
    root: Path
    split: str
    split_index: int
    class_names: tuple[str, ...]
    videos: tuple[PublicVideo, ...]

    def __len__(self) -> int:
        """Return the number of videos."""
        return len(self.videos)

    def head(self, count: int) -> 'PublicDataset':
        """Return the split cut to its first ``count`` videos (the ground truth follows)."""
        if _int(count) is None or count < 1:
            raise ValueError(f'PublicDataset.head: expected a count >= 1, got {count!r}')
        return PublicDataset(self.kind, self.root, self.split, self.split_index,
                             self.class_names, self.videos[:count])

    def ground_truth(self) -> GroundTruth:
        """Return the evaluation ground truth of the videos (0-based frame numbers)."""
        return GroundTruth([VideoAnnotations(v.name, v.num_frames, v.tubes)
                            for v in self.videos], len(self.class_names), self.class_names)


def _frame_folder(root: Path) -> Path:
    for name in FRAME_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f'{root}: expected a frame folder '
                            f'{" or ".join(str(root / n) for n in FRAME_FOLDERS)}')


def _frame_extension(kind: DatasetKind, folder: Path, video: str) -> str:
    """Return the kind's frame extension, or the other one if only that one is there."""
    candidates = [kind.extension] + [e for e in ('.jpg', '.png') if e != kind.extension]
    for ext in candidates:
        if (folder / video / f'00001{ext}').is_file():
            return ext
    return kind.extension


def open_dataset(kind: str, root: str | os.PathLike, split: str = 'test',
                 split_index: int = 0, annotations: str | os.PathLike | None = None
                 ) -> PublicDataset:
    """Open one split of UCF101-24 or JHMDB-21 (frames are read later, on access).

    Args:
        kind: 'ucf24' (UCF101-24) or 'jhmdb' (JHMDB-21).
        root: the data set folder: the annotation file (``UCF101v2-GT.pkl`` or
            ``JHMDB-GT.pkl``) and ``Frames/<video>/00001.jpg|png`` (or ``rgb-images/``).
        split: 'train' or 'test'.
        split_index: 0 for UCF101-24, 0, 1 or 2 for JHMDB-21 (ACT's splits 1 to 3).
        annotations: the annotation file, if not in ``root`` under its usual name.

    Returns:
        The split: videos with lazy frames and 0-based tubes, the class names, the ground
        truth.

    Raises:
        ValueError: a bad argument or annotation content (the message names it).
        FileNotFoundError: the annotation file, the frame folder, a video's folder or its
            first or last frame is missing (the message names the path).
        RefusedPickleError: the annotation file names a global other than numpy's arrays.
    """
    if kind not in KINDS:
        raise ValueError(f'open_dataset: kind = {kind!r}: expected one of {list(KINDS)}')
    info = KINDS[kind]
    if split not in SPLITS:
        raise ValueError(f'open_dataset: split = {split!r}: expected one of {list(SPLITS)}')
    if _int(split_index) is None or not 0 <= split_index < info.num_splits:
        raise ValueError(f'open_dataset: split_index = {split_index!r}: expected an int in '
                         f'0 .. {info.num_splits - 1} ({info.title} has {info.num_splits} '
                         f'split{"s" if info.num_splits > 1 else ""})')
    split_index = int(split_index)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'{root}: the {info.title} folder does not exist')
    ann = load_annotations(root / info.annotations if annotations is None else annotations)
    lists = ann.train_videos if split == 'train' else ann.test_videos
    if split_index >= len(lists):
        raise ValueError(f'open_dataset: split_index = {split_index}: {ann.path} has only '
                         f'{len(lists)} {split} split(s)')
    names = ann.videos(split, split_index)
    if not names:
        raise ValueError(f'{ann.path}: {split}_videos[{split_index}] is empty')
    # 0-based frames for the videos; from_act makes the boxes continuous (x2, y2 + 1).
    shifted = {v: {k: [np.concatenate([arr[:, :1] - 1, arr[:, 1:]], axis=1) for arr in tubes]
                   for k, tubes in ann.gttubes.get(v, {}).items()} for v in names}
    try:
        gt = GroundTruth.from_act(shifted, ann.nframes, ann.labels, names, inclusive=True)
    except ValueError as exc:
        raise ValueError(f'{ann.path}: {exc}') from exc
    folder = _frame_folder(root)
    ext = _frame_extension(info, folder, names[0])
    videos = []
    for v in names:
        t = ann.nframes[v]
        directory = folder / v
        if not directory.is_dir():
            raise FileNotFoundError(f'{directory}: frame folder of video {v!r} not found')
        paths = [directory / f'{i:05d}{ext}' for i in range(1, t + 1)]
        for path in (paths[0], paths[-1]):
            if not path.is_file():
                raise FileNotFoundError(f'{path}: frame of video {v!r} not found (expected '
                                        f'{t} frames {paths[0].name} .. {paths[-1].name})')
        frames = FrameSequence(paths, ann.resolution.get(v), name=v)
        videos.append(PublicVideo(v, frames, gt.videos[v].tubes))
    return PublicDataset(info, root, split, split_index, ann.labels, tuple(videos))
