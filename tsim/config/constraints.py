"""Field constraints of config sections: each checks a value and, for tests, makes a bad one.

A constraint has ``describe()`` (the rule in words, used in every error message), ``check(value)``
(the value coerced, or ValueError) and ``bad_value()`` (a value that breaks the rule).
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Interval:
    """A number of type ``kind`` (int or float) in [low, high]; ``open_low`` makes it > low."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    example: Any = None

    def describe(self) -> str:
        name = "an integer" if self.kind is int else "a float"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return name + (" " + " and ".join(parts) if parts else "")

    def check(self, value: Any) -> Any:
        """Return the value coerced to ``kind``; raise ValueError when it breaks the rule."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            raise ValueError
        if self.high is not None and value > self.high:
            raise ValueError
        return value

    def bad_value(self) -> Any:
        """A value that breaks the rule (used by tests)."""
        if self.low is not None:
            return self.low - 1 if self.kind is int else (self.low if self.open_low else self.low - 1.0)
        return "not a number"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    values: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) and not any(isinstance(v, bool) for v in self.values):
            raise ValueError
        if value not in self.values:
            raise ValueError
        return value

    def bad_value(self) -> Any:
        return "no-such-choice"


@dataclass(frozen=True)
class Text:
    """Any string (paths, names)."""

    def describe(self) -> str:
        return "a string"

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError
        return value

    def bad_value(self) -> Any:
        return 3.5


@dataclass(frozen=True)
class TextList:
    """A list of strings from ``allowed`` (or any strings if ``allowed`` is empty)."""

    allowed: tuple = ()
    takes_list = True  # a TOML list is one value of this field, not a sweep axis

    def describe(self) -> str:
        if self.allowed:
            return "a list of strings from " + ", ".join(repr(v) for v in self.allowed)
        return "a list of strings"

    def check(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError
        if self.allowed and any(v not in self.allowed for v in value):
            raise ValueError
        return tuple(value)

    def bad_value(self) -> Any:
        return ["no-such-entry"] if self.allowed else 3


def rule(constraint, default, fix: str = "", sweepable: bool = True):
    """A dataclass field with a constraint (``metadata['rule']``) and a hint for the fix."""
    return field(default=default, metadata={"rule": constraint, "fix": fix, "sweepable": sweepable})


@dataclass(frozen=True)
class IntTuple:
    """A list of positive integers (a shape); empty means "the default"."""

    takes_list = True  # a TOML list is one value of this field, not a sweep axis

    def describe(self) -> str:
        return "a list of positive integers"

    def check(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise ValueError
        return tuple(value)

    def bad_value(self) -> Any:
        return [0, -1]


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


def as_dict(cfg, sections) -> dict:
    """Plain nested dict of a sectioned config (``study``, one table per section, axes as lists), for
    summary.json and cell keys."""
    out = {"study": cfg.study}
    for name in sections:
        sec = getattr(cfg, name)  # flat sections of scalars and tuples: no deep copy needed
        out[name] = {f.name: _plain(getattr(sec, f.name)) for f in dataclasses.fields(sec)}
    for key, values in cfg.axes:
        sec, fld = key.split(".")
        out[sec][fld] = list(values)
    return out
