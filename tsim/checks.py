"""Validators of user input shared by the core modules (network, teacher, data, losses, train, ...).

One convention: a bad argument raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right
kind, wrong value) whose message names the parameter, the rule, the value and a fix:

    "<param> must be <rule>; got <value>. <fix>"

e.g. ``steps must be an integer >= 1; got 2.7. Pass a whole number of steps.``

Every function here is pure and cheap (at most one ``np.isfinite`` pass over an array) and
depends on numpy only, so that any layer of tsim can use it. :func:`as_generator` is the one
place where a seed becomes a random Generator.
"""
from __future__ import annotations

import numbers
import operator
import reprlib

import numpy as np

_REPR = reprlib.Repr()
_REPR.maxstring = 40
_REPR.maxother = 60
_REPR.maxlist = 6
_REPR.maxtuple = 6

RNG_FIX = "Pass numpy.random.default_rng(seed)."


def show(value) -> str:
    """A short, readable rendering of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        if value.ndim <= 1 and value.size <= 6:
            return repr(value.tolist())
        return f"an array of shape {value.shape}"
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, numbers.Number, str, list, tuple)):
        return _REPR.repr(value)
    return f"a {type(value).__name__}"


def fail(name: str, rule: str, got: str, fix: str, error=ValueError) -> Exception:
    """The exception ``error("<name> must be <rule>; got <got>. <fix>")``, returned for ``raise``.

    ``got`` is already rendered (:func:`show` renders a value).
    """
    return error(f"{name} must be {rule}; got {got}. {fix}".rstrip())


def _bounds(low, high, open_low: bool = False, open_high: bool = False) -> str:
    """'>= 1', '> 0', 'in [0, 1)' ...; '' without bounds."""
    if low is not None and high is not None:
        return f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if low is not None:
        return f"{'>' if open_low else '>='} {low}"
    if high is not None:
        return f"{'<' if open_high else '<='} {high}"
    return ""


def is_int(value) -> bool:
    """True for Python and numpy integers (and 0-d integer arrays); False for bools."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def as_int(value, name: str, low: int | None = None, high: int | None = None, fix: str | None = None) -> int:
    """``value`` as a Python int with ``low <= value <= high``.

    Accepts Python and numpy integers, and floats with an integral value (4.0, as a config file
    may give); rejects fractional (2.5) and non-finite floats, and bools.

    Raises
    ------
    TypeError
        ``value`` is not a number (a bool, a string, None, a list ...).
    ValueError
        ``value`` is fractional, non-finite or out of range.
    """
    rule = f"an integer {_bounds(low, high)}".rstrip()
    fix = f"Pass a whole number for {name}." if fix is None else fix
    if is_int(value):
        out = operator.index(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        if not (np.isfinite(value) and float(value).is_integer()):
            raise fail(name, rule, show(value), fix)
        out = int(value)
    else:
        raise fail(name, rule, show(value), fix, TypeError)
    if (low is not None and out < low) or (high is not None and out > high):
        raise fail(name, rule, show(value), fix)
    return out


def as_float(value, name: str, low: float | None = None, high: float | None = None, *, open_low: bool = False,
             open_high: bool = False, finite: bool = True, fix: str | None = None) -> float:
    """``value`` as a Python float within the bounds (closed unless ``open_low``/``open_high``).

    NaN is always rejected, +-inf unless ``finite=False``. Bools and non-numbers are a TypeError.
    """
    rule = f"{'a finite number' if finite else 'a number'} {_bounds(low, high, open_low, open_high)}".rstrip()
    fix = f"Pass a real number for {name}." if fix is None else fix
    scalar_array = isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) or scalar_array):
        raise fail(name, rule, show(value), fix, TypeError)
    out = float(value)
    bad = np.isnan(out) or (finite and np.isinf(out))
    if low is not None:
        bad = bad or (out <= low if open_low else out < low)
    if high is not None:
        bad = bad or (out >= high if open_high else out > high)
    if bad:
        raise fail(name, rule, show(value), fix)
    return out


def as_bool(value, name: str) -> bool:
    """``value`` as a bool; accepts Python and numpy bools only (not 0/1, not strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(name, "True or False", show(value), f"Pass {name}=True or {name}=False.", TypeError)
    return bool(value)


def _first_bad(ok: np.ndarray, arr: np.ndarray) -> str:
    """'nan at index (0, 1) (2 non-finite entries)' for the first False of ``ok``."""
    idx = tuple(int(i) for i in np.argwhere(~ok)[0])
    n = int(ok.size - np.count_nonzero(ok))
    return f"{float(arr[idx])!r} at index {idx[0] if len(idx) == 1 else idx} ({n} non-finite value{'s' * (n > 1)})"


def finite_array(X, name: str, ndim=None, shape=None, fix: str | None = None) -> np.ndarray:
    """``X`` as a float64 ndarray (not copied when it already is one), checked for shape and finiteness.

    Parameters
    ----------
    X : array_like
    name : str
        The parameter name for messages.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any size (checked after ``ndim``).
    fix : str, optional
        The advice given for a non-finite entry.

    Raises
    ------
    TypeError
        ``X`` cannot be read as an array of real numbers.
    ValueError
        Wrong ndim or shape, or a NaN/inf entry.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(name, "an array of real numbers", show(X), f"Pass a numeric numpy array for {name}.",
                   TypeError) from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            dims = " or ".join(str(k) for k in allowed)
            raise fail(name, f"a {dims}-d array", f"shape {arr.shape}", f"Pass {name} with {dims} axes.")
    if shape is not None:
        if len(shape) != arr.ndim or any(s is not None and s != t for s, t in zip(shape, arr.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," * (len(shape) == 1)) + ")"
            raise fail(name, f"of shape {want}", f"shape {arr.shape}", f"Pass {name} with shape {want}.")
    ok = np.isfinite(arr)
    if not ok.all():
        fix = f"Remove or replace the non-finite values of {name}." if fix is None else fix
        raise fail(name, "finite", _first_bad(ok, arr), fix)
    return arr


def int_array(values, name: str, low: int | None = None, high: int | None = None) -> np.ndarray:
    """``values`` (a sequence of whole numbers, integral floats allowed) as a 1-d int64 array in [low, high]."""
    rule = f"a sequence of integers {_bounds(low, high)}".rstrip()
    fix = f"Pass whole numbers for {name}."
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise fail(name, rule, show(values), fix, TypeError) from None
    arr = arr.reshape(-1) if arr.ndim == 0 else arr
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iuf"):
        raise fail(name, rule, show(values), fix, TypeError)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise fail(name, rule, show(values), fix)
    out = arr.astype(np.int64)
    if out.size and ((low is not None and out.min() < low) or (high is not None and out.max() > high)):
        raise fail(name, rule, show(values), fix)
    return out


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """The one conversion point for randomness: a numpy Generator (returned as is, its stream
    goes on) or a non-negative integer seed (``numpy.random.default_rng(seed)``).

    Raises
    ------
    TypeError
        Anything else (None, a RandomState, a float, ...).
    ValueError
        A negative seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    rule = "a numpy Generator or an integer seed >= 0"
    if not is_int(rng):
        raise fail(name, rule, show(rng), RNG_FIX, TypeError)
    if operator.index(rng) < 0:
        raise fail(name, rule, show(rng), RNG_FIX)
    return np.random.default_rng(operator.index(rng))


def is_rng_sequence(value) -> bool:
    """True for a list, a tuple or a 1-d array (meant as one Generator or seed per student)."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def as_generators(rngs, E: int, name: str = "rngs") -> list:
    """A list of exactly E Generators, one per student, from a sequence of E Generators or seeds.

    A single Generator or seed is accepted only when E == 1. For E > 1 pass one per student, so
    that a student's randomness depends on its own seed only.

    Raises
    ------
    TypeError
        ``rngs`` or an element is not a Generator, a seed or a sequence of them.
    ValueError
        A single one for E > 1, a sequence whose length is not E, or a negative seed.
    """
    E = as_int(E, "E", low=1)
    rule = f"a sequence of E={E} Generators or seeds (one per student)"
    fix = f"Pass a list of {E}, e.g. [numpy.random.default_rng(s) for s in seeds]."
    if not is_rng_sequence(rngs):
        single = isinstance(rngs, np.random.Generator) or is_int(rngs)
        if single and E == 1:
            return [as_generator(rngs, name)]
        raise fail(name, rule, "a single one" if single else show(rngs), fix, ValueError if single else TypeError)
    if len(rngs) != E:
        raise fail(name, rule, f"{len(rngs)} of them", fix)
    return [as_generator(r, f"{name}[{i}]") for i, r in enumerate(rngs)]
