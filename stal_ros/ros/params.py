# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The node's ROS parameters, declared from the typed config with descriptors.

Dotted names come from the config tree: ``tubes.*`` (every ``TubeConfig`` field), the
detector's runtime settings ``detector.postprocess.*``, ``detector.device``,
``detector.precision``, ``detector.channels_last`` and the node's own ``NodeConfig``
(``model``, ``cameras``, ``autostart``, ``qos.*``, ...).  The network itself (backbone, input
size, classes, ...) is what the checkpoint was trained with and is not a parameter.

Each parameter gets its description, its range (``ge``/``le``; the exclusive bounds ``gt``/``lt``
are checked by the config) and ``read_only`` where a change needs a restart.  A bad value at
start-up raises ``ConfigError`` naming parameter, value and expectation; the runtime-safe ones
(``RUNTIME_PARAMETERS``) are re-validated through the config on every live change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import pathlib
import sys
import textwrap
import typing
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from stal_ros.config import (ConfigBase, ConfigError, DetectorConfig, NodeConfig,
                             PostprocessConfig, TubeConfig)
from stal_ros.config_yaml import scalar as yaml_scalar
from stal_ros.pipeline import RUNTIME_TUBE_FIELDS


@dataclass(frozen=True)
class Settings:
    """Everything read from the parameters at start-up."""

    node: NodeConfig
    tubes: TubeConfig
    detector: dict[str, Any]   # the detector's runtime fields (nested: postprocess, device...)

    def detector_config(self, trained: DetectorConfig) -> DetectorConfig:
        """Return the checkpoint's config with this node's runtime settings."""
        return dataclasses.replace(
            trained, postprocess=PostprocessConfig.from_dict(self.detector['postprocess'],
                                                             'detector.postprocess'),
            device=self.detector['device'], precision=self.detector['precision'],
            channels_last=self.detector['channels_last'])


DETECTOR_FIELDS = ('device', 'precision', 'channels_last')
RUNTIME_PARAMETERS = tuple(f'detector.postprocess.{f.name}'
                           for f in dataclasses.fields(PostprocessConfig)) + \
    tuple(f'tubes.{name}' for name in RUNTIME_TUBE_FIELDS) + \
    ('output.trail', 'processing_rate')

_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
          float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING}
_ARRAYS = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
           float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
_INT64 = 2 ** 63 - 1


def _ros_type(annotation: Any) -> Parameter.Type:
    if typing.get_origin(annotation) is tuple:
        return _ARRAYS[typing.get_args(annotation)[0]]
    return _TYPES[annotation]


def descriptor(name: str, meta: dict[str, Any], ros_type: Parameter.Type,
               read_only: bool) -> ParameterDescriptor:
    """Return the ``ParameterDescriptor`` of one config leaf: description, range, read-only."""
    text = meta['description']
    if meta.get('choices'):
        text += f' One of {list(meta["choices"])}.'
    desc = ParameterDescriptor(name=name, type=ros_type.value, description=text,
                               read_only=read_only)
    low = next((meta[k] for k in ('ge', 'gt') if meta.get(k) is not None), None)
    high = next((meta[k] for k in ('le', 'lt') if meta.get(k) is not None), None)
    if low is None and high is None:
        return desc
    if ros_type in (Parameter.Type.DOUBLE, Parameter.Type.DOUBLE_ARRAY):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(-sys.float_info.max if low is None else low),
            to_value=float(sys.float_info.max if high is None else high), step=0.0)]
    elif ros_type in (Parameter.Type.INTEGER, Parameter.Type.INTEGER_ARRAY):
        desc.integer_range = [IntegerRange(from_value=int(-_INT64 if low is None else low),
                                           to_value=int(_INT64 if high is None else high),
                                           step=0)]
    return desc


def _declare(node: Node, name: str, meta: dict[str, Any], annotation: Any,
             read_only: bool) -> Any:
    ros_type = _ros_type(annotation)
    desc = descriptor(name, meta, ros_type, read_only)
    default = meta['default']
    try:
        if isinstance(default, tuple) and not default:
            value = node.declare_parameter(name, ros_type, desc).value   # None when not set
            return () if value is None else tuple(value)
        value = node.declare_parameter(name, list(default) if isinstance(default, tuple)
                                       else default, desc).value
    except InvalidParameterValueException:
        raise ConfigError(tuple(name.split('.')), _override(node, name),
                          f'expected {_range_text(meta)}') from None
    except InvalidParameterTypeException:
        raise ConfigError(tuple(name.split('.')), _override(node, name),
                          f'expected a parameter of type {ros_type.name.lower()}') from None
    return tuple(value) if isinstance(value, list) else value


def _override(node: Node, name: str) -> Any:
    """Return the value given for ``name`` on the command line or in a parameter file."""
    # rclpy's exceptions do not keep the rejected value; the overrides it came from do.
    given = getattr(node, '_parameter_overrides', {}).get(name)
    return None if given is None else given.value


def _range_text(meta: dict[str, Any]) -> str:
    parts = [f'{sign} {meta[k]}' for k, sign in (('ge', '>='), ('gt', '>'), ('le', '<='),
                                                 ('lt', '<')) if meta.get(k) is not None]
    return 'a value ' + ' and '.join(parts) if parts else 'a valid value'


def _declare_section(node: Node, cls: type[ConfigBase], prefix: str,
                     runtime: tuple[str, ...], only: tuple[str, ...] | None = None
                     ) -> dict[str, Any]:
    """Declare the leaves of ``cls`` under ``prefix``; return ``{dotted name: value}``."""
    described = cls.describe(prefix)
    values = {}
    for name, _field, annotation in cls.leaves(prefix):
        if only is not None and not any(name == o or name.startswith(o + '.') for o in only):
            continue
        meta = described[name]
        read_only = name not in runtime
        values[name] = _declare(node, name, meta, annotation, read_only)
    return values


def nest(flat: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{'a.b.c': v}`` below ``prefix`` ('a') -> ``{'b': {'c': v}}``."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name[len(prefix) + 1:].split('.') if prefix else name.split('.')
        here = out
        for part in parts[:-1]:
            here = here.setdefault(part, {})
        here[parts[-1]] = value
    return out


def declare_settings(node: Node) -> Settings:
    """Declare every parameter on ``node`` and read them into validated ``Settings``.

    Raises:
        ConfigError: a value of the wrong type, out of range or failing the config's rules.
    """
    detector_flat = _declare_section(
        node, DetectorConfig, 'detector', RUNTIME_PARAMETERS,
        only=('detector.postprocess',) + tuple(f'detector.{f}' for f in DETECTOR_FIELDS))
    tubes_flat = _declare_section(node, TubeConfig, 'tubes', RUNTIME_PARAMETERS)
    node_flat = _declare_section(node, NodeConfig, '', RUNTIME_PARAMETERS)
    detector = nest(detector_flat, 'detector')
    # Validate the runtime fields with the config's own rules (fp16 needs CUDA, ...).
    PostprocessConfig.from_dict(detector['postprocess'], 'detector.postprocess')
    DetectorConfig.from_dict({k: detector[k] for k in DETECTOR_FIELDS}, 'detector')
    return Settings(node=NodeConfig.from_dict(nest(node_flat, ''), ''),
                    tubes=TubeConfig.from_dict(nest(tubes_flat, 'tubes'), 'tubes'),
                    detector=detector)


def updated(settings: Settings, changes: dict[str, Any]) -> Settings:
    """Return ``settings`` with the given runtime parameters changed, validated.

    Raises:
        ConfigError: a parameter that cannot change at runtime or an invalid value.
    """
    for name in changes:
        if name not in RUNTIME_PARAMETERS:
            raise ConfigError(tuple(name.split('.')), changes[name],
                              'cannot change while running (read-only: restart the node)')
    tubes = settings.tubes.flatten('tubes')
    post = {f'detector.postprocess.{k}': v
            for k, v in settings.detector['postprocess'].items()}
    node = settings.node.flatten('')
    for name, value in changes.items():
        for flat in (tubes, post, node):
            if name in flat:
                flat[name] = tuple(value) if isinstance(value, list) else value
    detector = dict(settings.detector, postprocess=nest(post, 'detector.postprocess'))
    PostprocessConfig.from_dict(detector['postprocess'], 'detector.postprocess')
    return Settings(node=NodeConfig.from_dict(nest(node, ''), ''),
                    tubes=TubeConfig.from_dict(nest(tubes, 'tubes'), 'tubes'),
                    detector=detector)


def resolve_model(model: str) -> pathlib.Path:
    """Find the checkpoint named by the ``model`` parameter.

    A value with a '/' or ending in '.pt' is a path; otherwise a name looked up as
    ``models/<name>.pt`` in the source checkout this module runs from, then in the package's
    share folder (a colcon install).

    Raises:
        ConfigError: naming the parameter, the value and every path looked at.
    """
    if '/' in model or model.endswith('.pt'):
        path = pathlib.Path(model).expanduser()
        if path.is_file():
            return path.resolve()
        raise ConfigError(('model',), model, f'expected an existing checkpoint file, but '
                          f'{path.resolve()} does not exist')
    if not model:
        raise ConfigError(('model',), model, 'expected a checkpoint path or a model name')
    places = [pathlib.Path(__file__).resolve().parents[2] / 'models']
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
        try:
            places.append(pathlib.Path(get_package_share_directory('stal_ros')) / 'models')
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    tried = []
    for place in places:
        path = place / f'{model}.pt'
        if path.is_file():
            return path
        tried.append(str(path))
    raise ConfigError(('model',), model, f'expected the name of a model in models/ or a '
                      f'checkpoint path, but none of {tried} exists')


def parameter_rows() -> list[tuple[str, Any, bool, str]]:
    """Every parameter the node declares: (name, default, changeable live, description)."""
    sections = ((NodeConfig, '', None), (TubeConfig, 'tubes', None),
                (DetectorConfig, 'detector',
                 ('detector.postprocess',) + tuple(f'detector.{f}' for f in DETECTOR_FIELDS)))
    rows = []
    for cls, prefix, only in sections:
        described = cls.describe(prefix)
        for name, _field, _annotation in cls.leaves(prefix):
            if only is not None and not any(name == o or name.startswith(o + '.')
                                            for o in only):
                continue
            meta = described[name]
            text = meta['description'] + (f' One of {list(meta["choices"])}.'
                                          if meta.get('choices') else '')
            rows.append((name, meta['default'], name in RUNTIME_PARAMETERS, text))
    return rows


def markdown_table() -> str:
    """Return the README's parameter table, generated from the config (it never drifts)."""
    def show(value: Any) -> str:
        if isinstance(value, tuple):
            return '[' + ', '.join(str(v) for v in value) + ']'
        return repr(value) if isinstance(value, str) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    lines = ['| parameter | default | live | description |', '| --- | --- | --- | --- |']
    for name, default, live, text in parameter_rows():
        lines.append(f'| `{name}` | `{show(default)}` | {"yes" if live else "no"} | '
                     f'{text.replace("|", "/")} |')
    return '\n'.join(lines) + '\n'


def parameter_file() -> str:
    """Return the node's ROS 2 parameter file: every parameter it declares, with defaults.

    ``config/stal_ros.yaml`` is this text (a test keeps them equal): only parameters the node
    reads, so no key in it is silently ignored.
    """
    lines = ['# stal_node parameters: generated by `python -m stal_ros.ros.params --yaml`; every',
             '# parameter the node declares, with its description. Edit values, keep the keys.',
             '# The network (backbone, input size, classes, ...) comes from the model checkpoint.',
             '/**:', '  ros__parameters:']
    opened: list[str] = []
    for name, default, live, text in parameter_rows():
        *sections, leaf = name.split('.')
        common = 0
        while common < min(len(opened), len(sections)) and opened[common] == sections[common]:
            common += 1
        opened = opened[:common]
        for section in sections[common:]:
            lines.append(' ' * (4 + 2 * len(opened)) + f'{section}:')
            opened.append(section)
        pad = ' ' * (4 + 2 * len(opened))
        note = text + ('' if live else ' (read-only)')
        lines.extend(textwrap.wrap(note, 99, initial_indent=f'{pad}# ',
                                   subsequent_indent=f'{pad}# ', break_on_hyphens=False))
        if isinstance(default, tuple) and not default:
            # ROS 2 parameter files cannot give an empty list (its type is unknown): unset.
            lines.append(f'{pad}# {leaf}: [...]   (unset: empty)')
            continue
        value = list(default) if isinstance(default, tuple) else default
        lines.append(f'{pad}{leaf}: {yaml_scalar(value)}')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Print the README parameter table, or with ``--yaml`` the parameter file."""
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(parameter_file() if '--yaml' in args else markdown_table())
    return 0


if __name__ == '__main__':
    sys.exit(main())
