# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Machinery of the typed config (stdlib only): ``param``, ``ConfigBase``, ``ConfigError``.

Each field declared with ``param`` carries its default, a description and its accepted range or
choices; ``ConfigBase.__post_init__`` validates every field so an invalid value never exists in
a config object. The stage configs themselves live in ``stal_ros.config``.

Parameter names come from where a section sits in the tree, never from the section class: the
``tubes`` section of the top-level config is ``tubes.*``, and the same ``TubeConfig`` nested
under a camera would be ``cameras.front.tubes.*``. A config object does not know where it sits,
so an error raised while building it directly names the class (``TubeConfig.jump_gap``); the
front ends (``from_dict``, YAML files, ROS parameters, checkpoints) build the tree and the error
then names the dotted path (``tubes.jump_gap``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field, fields
import math
import types
import typing
from typing import Any, Iterator, Mapping

_MISSING = object()


class ConfigError(ValueError):
    """An invalid configuration value: names the parameter, the value and what was expected.

    Attributes:
        path: dotted-name parts of the parameter, outermost first (``('tubes', 'jump_gap')``).
        value: the rejected value (``_MISSING`` when the error is not about one value).
        expectation: what was expected.
        owner: the config class that raised it while nobody has placed it in a tree yet.

    """

    def __init__(self, path: tuple[str, ...] | str, value: Any = _MISSING,
                 expectation: str = '', owner: str | None = None) -> None:
        if isinstance(path, str):  # a complete message, e.g. naming a file
            path, expectation = (), path
        self.path = tuple(path)
        self.value = value
        self.expectation = expectation
        self.owner = owner
        super().__init__(self._message())

    def _message(self) -> str:
        name = '.'.join(((self.owner,) if self.owner else ()) + self.path)
        if self.value is _MISSING:
            return f'{name}: {self.expectation}' if name else self.expectation
        return f'{name} = {self.value!r}: {self.expectation}'

    def within(self, *names: str) -> 'ConfigError':
        """Return this error placed under the sections ``names`` (outermost first)."""
        return ConfigError(tuple(n for n in names if n) + self.path, self.value,
                           self.expectation)


def param(default: Any = dataclasses.MISSING, description: str = '', *,
          ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None,
          choices: tuple | None = None, read_only: bool = False,
          default_factory: Any = dataclasses.MISSING) -> Any:
    """Declare a config field with its description and constraints.

    ``read_only`` marks parameters whose change needs a restart (the node declares them
    read-only); ranges are inclusive (``ge``/``le``) or exclusive (``gt``/``lt``) and apply to
    every element of a tuple.
    """
    meta = {'description': description, 'ge': ge, 'gt': gt, 'le': le, 'lt': lt,
            'choices': choices, 'read_only': read_only}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_ok(value: Any, annotation: Any) -> bool:
    """Check ``value`` against a (resolved) field annotation, strictly (bool is not int)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(_type_ok(v, a) for v, a in zip(value, args))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _describe(annotation: Any) -> str:
    return getattr(annotation, '__name__', None) or str(annotation).replace('typing.', '')


def _section_type(annotation: Any) -> type | None:
    """Return the ``ConfigBase`` subclass a field holds, or None for a leaf parameter."""
    if isinstance(annotation, type) and issubclass(annotation, ConfigBase):
        return annotation
    return None


def _check_constraints(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    numbers = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise ConfigError((name,), value, 'expected a finite number')
    choices = meta.get('choices')
    if choices is not None and any(v not in choices for v in numbers):
        raise ConfigError((name,), value, f'expected one of {list(choices)}')
    bounds = (('ge', float.__ge__, '>='), ('gt', float.__gt__, '>'),
              ('le', float.__le__, '<='), ('lt', float.__lt__, '<'))
    for key, ok, sign in bounds:
        bound = meta.get(key)
        if bound is None:
            continue
        for v in numbers:
            if isinstance(v, (int, float)) and not ok(float(v), float(bound)):
                raise ConfigError((name,), value, f'expected a value {sign} {bound}')


class ConfigBase:
    """Mixin for the frozen config dataclasses: validation, dict round trip, descriptions.

    Subclasses may override ``check()`` for cross-field rules (raise via ``self.fail``).
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        try:
            for f in fields(self):
                value = getattr(self, f.name)
                annotation = hints[f.name]
                # YAML and ROS hand over lists where the dataclass wants tuples, ints for floats.
                if isinstance(value, list) and typing.get_origin(annotation) is tuple:
                    value = tuple(value)
                    object.__setattr__(self, f.name, value)
                if annotation is float and isinstance(value, int) and \
                        not isinstance(value, bool):
                    value = float(value)
                    object.__setattr__(self, f.name, value)
                section = _section_type(annotation)
                if section is not None:
                    if not isinstance(value, section):
                        raise ConfigError((f.name,), value, f'expected a {section.__name__}')
                    continue
                if not _type_ok(value, annotation):
                    raise ConfigError((f.name,), value, f'expected {_describe(annotation)}, '
                                      f'got {type(value).__name__}')
                _check_constraints(f.name, value, f.metadata)
            self.check()
        except ConfigError as exc:
            raise ConfigError(exc.path, exc.value, exc.expectation,
                              owner=type(self).__name__) from None

    def check(self) -> None:
        """Cross-field validation; override in subclasses."""

    def fail(self, name: str, expectation: str) -> None:
        """Raise a ``ConfigError`` for field ``name`` with the given expectation."""
        raise ConfigError((name,), getattr(self, name), expectation)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) suitable for YAML and checkpoints."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ConfigBase):
                out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, prefix: str = '') -> 'ConfigBase':
        """Build from a nested dict; errors name the dotted path below ``prefix``.

        Unknown keys, values of the wrong type or range and sections that are not mappings
        raise ``ConfigError`` naming ``<prefix>.<section>.<parameter>``.
        """
        data = dict(data or {})
        where = tuple(p for p in prefix.split('.') if p)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            dotted = ['.'.join(where + (k,)) for k in unknown]
            raise ConfigError((), _MISSING, f'unknown parameter(s) {dotted}: expected some '
                              f'of {sorted(".".join(where + (k,)) for k in known)}')
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for name, value in data.items():
            section = _section_type(hints[name])
            if section is not None:
                if not isinstance(value, Mapping):
                    raise ConfigError(where + (name,), value, 'expected a mapping')
                value = section.from_dict(value, '.'.join(where + (name,)))
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise exc.within(*where) from None

    @classmethod
    def leaves(cls, prefix: str = '') -> Iterator[tuple[str, dataclasses.Field, Any]]:
        """Yield ``(dotted name, field, resolved type)`` of every leaf parameter, in order."""
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            name = f'{prefix}.{f.name}' if prefix else f.name
            section = _section_type(hints[f.name])
            if section is not None:
                yield from section.leaves(name)
            else:
                yield name, f, hints[f.name]

    @classmethod
    def describe(cls, prefix: str = '') -> dict[str, dict[str, Any]]:
        """Flat ``{dotted name: {default, description, type, constraints...}}`` of every leaf."""
        out: dict[str, dict[str, Any]] = {}
        for name, f, annotation in cls.leaves(prefix):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = None
            out[name] = dict(f.metadata, default=default, type=_describe(annotation))
        return out

    def flatten(self, prefix: str = '') -> dict[str, Any]:
        """Flat ``{dotted name: value}`` of every leaf of this config (tuples kept)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            name = f'{prefix}.{f.name}' if prefix else f.name
            value = getattr(self, f.name)
            if isinstance(value, ConfigBase):
                out.update(value.flatten(name))
            else:
                out[name] = value
        return out
