# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Machinery of the typed config (stdlib only): ``param``, ``ConfigBase``, ``ConfigError``.

Each field declared with ``param`` carries its default, a description and its accepted range or
choices; ``ConfigBase.__post_init__`` validates every field so an invalid value never exists in
a config object. The stage configs themselves live in ``stal_ros.config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field, fields
import math
import types
import typing
from typing import Any, ClassVar, Mapping


class ConfigError(ValueError):
    """A configuration value is invalid; the message names parameter, value and expectation."""


def param(default: Any = dataclasses.MISSING, description: str = '', *,
          ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None,
          choices: tuple | None = None, read_only: bool = False,
          default_factory: Any = dataclasses.MISSING) -> Any:
    """Declare a config field with its description and constraints.

    ``read_only`` marks parameters whose change needs a restart (the node declares them
    read-only); ranges are inclusive (``ge``/``le``) or exclusive (``gt``/``lt``).
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


class ConfigBase:
    """Mixin for the frozen config dataclasses: validation, dict round trip, descriptions.

    Subclasses set ``SECTION`` (the dotted prefix of their parameters, e.g. ``'tubes'``) and
    may override ``check()`` for cross-field rules (raise ``ConfigError`` via ``self.fail``).
    """

    SECTION: ClassVar[str] = ''

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            name = self.qualified(f.name)
            annotation = hints[f.name]
            # YAML and ROS hand over lists where the dataclass wants tuples, ints for floats.
            if isinstance(value, list) and typing.get_origin(annotation) is tuple:
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if annotation is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if isinstance(value, ConfigBase):
                continue
            if not _type_ok(value, annotation):
                raise ConfigError(f'{name} = {value!r}: expected {_describe(annotation)}, '
                                  f'got {type(value).__name__}')
            self._check_constraints(name, value, f.metadata)
        self.check()

    @staticmethod
    def _check_constraints(name: str, value: Any, meta: Mapping[str, Any]) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f'{name} = {value!r}: expected a finite number')
        choices = meta.get('choices')
        if choices is not None:
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if item not in choices:
                    raise ConfigError(f'{name} = {value!r}: expected one of {list(choices)}')
        bounds = [('ge', lambda v, b: v >= b, '>='), ('gt', lambda v, b: v > b, '>'),
                  ('le', lambda v, b: v <= b, '<='), ('lt', lambda v, b: v < b, '<')]
        numbers = value if isinstance(value, tuple) else (value,)
        for key, ok, sign in bounds:
            bound = meta.get(key)
            if bound is None:
                continue
            for v in numbers:
                if isinstance(v, (int, float)) and not ok(v, bound):
                    raise ConfigError(f'{name} = {value!r}: expected a value {sign} {bound}')

    def check(self) -> None:
        """Cross-field validation; override in subclasses."""

    def qualified(self, name: str) -> str:
        """Return the dotted parameter name of field ``name``."""
        return f'{self.SECTION}.{name}' if self.SECTION else name

    def fail(self, name: str, expectation: str) -> None:
        """Raise a ``ConfigError`` for field ``name`` with the given expectation."""
        raise ConfigError(f'{self.qualified(name)} = {getattr(self, name)!r}: {expectation}')

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
    def from_dict(cls, data: Mapping[str, Any] | None) -> 'ConfigBase':
        """Build from a nested dict; unknown keys raise ``ConfigError`` naming them."""
        data = dict(data or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            prefix = f'{cls.SECTION}.' if cls.SECTION else ''
            raise ConfigError(f'unknown parameter(s) {[prefix + k for k in unknown]}: '
                              f'expected some of {sorted(prefix + k for k in known)}')
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for name, value in data.items():
            sub = hints[name]
            if isinstance(sub, type) and issubclass(sub, ConfigBase):
                if not isinstance(value, Mapping):
                    raise ConfigError(f'{sub.SECTION} = {value!r}: expected a mapping')
                value = sub.from_dict(value)
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Flat ``{dotted name: {default, description, constraints...}}`` for every leaf."""
        out: dict[str, dict[str, Any]] = {}
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            sub = hints[f.name]
            if isinstance(sub, type) and issubclass(sub, ConfigBase):
                out.update(sub.describe())
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = None
            name = f'{cls.SECTION}.{f.name}' if cls.SECTION else f.name
            out[name] = dict(f.metadata, default=default, type=_describe(hints[f.name]))
        return out
