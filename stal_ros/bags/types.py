# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The message types of stal_ros's bags: ROS 2 Jazzy's, vision_msgs and stal_ros's own.

``rosbags`` knows the standard ROS 2 Jazzy messages; vision_msgs and stal_ros/msg are added
from their ``.msg`` files, found where ROS installs them (``share/<package>/msg`` under
``AMENT_PREFIX_PATH`` or this Python's prefix), where ``pip install`` puts copies
(``share/stal_ros/bag_types``) or, in a source checkout, beside the package.
A bag that carries a type's definition (rosbag2 >= Iron and MCAP store them) can add it too
(``register_from_bag``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
import sys
from typing import Any, Iterable

import numpy as np
from rosbags.typesys import get_types_from_msg, Stores
from rosbags.typesys import get_typestore as _get_typestore
from rosbags.typesys.store import Typestore

from stal_ros.messages import MessageTypes, TYPE_NAMES

_REPO = Path(__file__).resolve().parents[2]
# Where a source checkout keeps the .msg files of the packages rosbags does not know.
_SOURCE_DIRS = {'stal_ros': _REPO / 'msg', 'vision_msgs': _REPO / 'scripts/env/vision_msgs/msg'}
# vision_msgs first: stal_ros/msg/ActionTube uses vision_msgs/BoundingBox2D.
_PACKAGES = ('vision_msgs', 'stal_ros')


def msg_dir(package: str) -> Path:
    """Return the folder of ``package``'s ``.msg`` files, or raise FileNotFoundError."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    candidates = [Path(p) / 'share' / package / 'msg' for p in prefixes]
    # pip install of stal_ros without ROS (setup.py's data_files).
    candidates.append(Path(sys.prefix) / 'share' / 'stal_ros' / 'bag_types' / package)
    if package in _SOURCE_DIRS:
        candidates.append(_SOURCE_DIRS[package])
    for path in candidates:
        if path.is_dir() and any(path.glob('*.msg')):
            return path
    raise FileNotFoundError(f'no .msg files of {package} in ' +
                            ', '.join(str(c) for c in candidates) +
                            ': source the ROS 2 workspace that has it (or run '
                            'scripts/setup_env.sh)')


def _register_package(store: Typestore, package: str) -> None:
    folder = msg_dir(package)
    types: dict[str, Any] = {}
    for path in sorted(folder.glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{package}/msg/{path.stem}'))
    store.register(types)


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """Return the typestore of ROS 2 Jazzy plus vision_msgs and stal_ros/msg (built once)."""
    store = _get_typestore(Stores.ROS2_JAZZY)
    for package in _PACKAGES:
        if not any(name.startswith(f'{package}/msg/') for name in store.types):
            _register_package(store, package)
    return store


def register_from_bag(store: Typestore, definitions: Iterable[tuple[str, str]]) -> None:
    """Add ``(msgtype, msgdef)`` pairs a bag carries for types the store does not know."""
    for msgtype, msgdef in definitions:
        if msgtype not in store.types and msgdef:
            store.register(get_types_from_msg(msgdef, msgtype))


@functools.lru_cache(maxsize=1)
def rosbags_types() -> MessageTypes:
    """Return the ``MessageTypes`` that build ``rosbags`` messages (for ``stal_ros.messages``)."""
    store = typestore()
    return MessageTypes(classes={name: store.types[name] for name in TYPE_NAMES},
                        float32s=lambda values: np.asarray(values, np.float32))
