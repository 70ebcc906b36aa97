# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""What the launch files start, as plain data (no launch/launch_ros import): ONE description.

``launch/stal.launch.py`` and ``launch/multi_camera.launch.py`` turn a ``NodeSpec`` into a
``launch_ros.actions.Node``; the tests (launch_ros has no wheels) turn the same ``NodeSpec``
into the equivalent command line with ``NodeSpec.command()``, so they start the node exactly as
the launch files do: executable, parameter files, parameter values, remappings, environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
import pathlib
import sys
from typing import Any, Sequence

PACKAGE = 'stal_ros'
EXECUTABLE = 'stal_node'
NODE_NAME = 'stal_node'


def share_dir() -> pathlib.Path:
    """Return the source checkout this module runs from, else the installed share folder."""
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / 'package.xml').is_file():
        return checkout
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
        try:
            return pathlib.Path(get_package_share_directory(PACKAGE))
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return checkout


@dataclass(frozen=True)
class NodeSpec:
    """One node process as a launch file starts it.

    Attributes:
        parameter_files: YAML parameter files, loaded in order.
        parameters: parameter values applied after the files (``{name: value}``).
        remappings: ``(from, to)`` topic remappings.
        env: extra environment variables (the Fast DDS profile).

    """

    package: str = PACKAGE
    executable: str = EXECUTABLE
    name: str = NODE_NAME
    namespace: str = ''
    parameter_files: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def launch_parameters(self) -> list[Any]:
        """Return the ``parameters=`` argument of ``launch_ros.actions.Node``."""
        return [*self.parameter_files, dict(self.parameters)] if self.parameters \
            else list(self.parameter_files)

    def launch_node_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments of ``launch_ros.actions.Node`` starting this process."""
        return {'package': self.package, 'executable': self.executable, 'name': self.name,
                'namespace': self.namespace, 'parameters': self.launch_parameters(),
                'remappings': list(self.remappings), 'additional_env': dict(self.env)}

    def command(self, executable: Sequence[str] | None = None) -> list[str]:
        """Return the equivalent command line (``python -m stal_ros.ros.node`` by default)."""
        args = list(executable or [sys.executable, '-m', 'stal_ros.ros.node'])
        args += ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:={_absolute(self.namespace)}']
        for path in self.parameter_files:
            args += ['--params-file', str(path)]
        for name, value in self.parameters.items():
            args += ['-p', f'{name}:={_ros_arg(value)}']
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        return args

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Return ``base`` (default: this process's environment) with ``env`` added."""
        return {**(os.environ if base is None else base), **self.env}


def launch_bool(text: str) -> bool:
    """Read a boolean launch argument ('1', 'true', 'yes', 'on', any case, are true)."""
    return text.strip().lower() in ('1', 'true', 'yes', 'on')


def _absolute(namespace: str) -> str:
    return namespace if namespace.startswith('/') else '/' + namespace


def _ros_arg(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_ros_arg(v) for v in value) + ']'
    return str(value)


def fastdds_env(share: pathlib.Path | None = None) -> dict[str, str]:
    """Environment that makes Fast DDS use the shipped large shared-memory profile."""
    profile = str((share or share_dir()) / 'config' / 'fastdds_profile.xml')
    return {'FASTDDS_DEFAULT_PROFILES_FILE': profile, 'FASTRTPS_DEFAULT_PROFILES_FILE': profile}


def stal_node_spec(*, namespace: str = '', image: str = '', profile: str = 'cpu',
                   params_files: Sequence[str] = (),
                   model: str = '', device: str = '', use_sim_time: bool = False,
                   cameras: Sequence[str] = (), camera_topics: Sequence[str] = (),
                   compressed: bool = False, fastdds_profile: bool = True,
                   share: pathlib.Path | None = None) -> NodeSpec:
    """Describe ``stal_node`` as ``stal.launch.py`` / ``multi_camera.launch.py`` start it.

    Args:
        namespace: the node's namespace (its relative topics live there).
        image: the camera topic of a single camera (remaps ``image``); '' keeps ``image``.
        profile: 'cpu' or 'gpu' loads ``config/<profile>.yaml`` after ``config/stal_ros.yaml``
            ('' for none).
        params_files: parameter files loaded after those.
        model, device: ``model`` and ``detector.device``; '' keeps the file's value.
        use_sim_time: for bag replay.
        cameras: names of several cameras (``<name>/image`` in, ``<name>/...`` out).
        camera_topics: one topic per camera to remap ``<name>/image`` to ('' keeps it).
        compressed: subscribe ``CompressedImage`` on ``image/compressed``.
        fastdds_profile: run with ``config/fastdds_profile.xml``.
        share: the package's share folder (default: ``share_dir()``).

    """
    share = share or share_dir()
    files = [str(share / 'config' / 'stal_ros.yaml')]
    if profile:
        path = share / 'config' / f'{profile}.yaml'
        if not path.is_file():
            raise ValueError(f"profile {profile!r}: expected 'cpu', 'gpu' or '', but {path} "
                             'does not exist')
        files.append(str(path))
    files += [str(f) for f in params_files if f]
    params: dict[str, Any] = {'use_sim_time': bool(use_sim_time)}
    if model:
        params['model'] = model
    if device:
        params['detector.device'] = device
    if compressed:
        params['compressed'] = True
    remaps: list[tuple[str, str]] = []
    if cameras:
        params['cameras'] = list(cameras)
        if camera_topics and len(camera_topics) != len(cameras):
            raise ValueError(f'camera_topics: expected one topic per camera ({len(cameras)}), '
                             f'got {len(camera_topics)}')
        suffix = 'image/compressed' if compressed else 'image'
        remaps += [(f'{name}/{suffix}', topic)
                   for name, topic in zip(cameras, camera_topics) if topic]
    elif image:
        remaps.append(('image/compressed' if compressed else 'image', image))
    return NodeSpec(namespace=namespace, parameter_files=tuple(files), parameters=params,
                    remappings=tuple(remaps), env=fastdds_env(share) if fastdds_profile else {})
