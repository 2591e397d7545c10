"""One check for every config's fields: each value against its annotation (type, whole number, finite),
then the ranges the config names, so that a bad field is a ``ValueError`` that names it.

Every config dataclass calls ``check_fields(self, ...)`` first in ``__post_init__``, then checks what
ties its fields together. Found by trying bad values as a new user would: ``budget=2.5`` ran "2 of 2.5
calls", ``eps=inf`` left NaN weights, ``initial="Classify it"`` took each character as an instruction,
``layers=(0.7,)`` became layer 0. The types are read from the annotations, so a new field is checked
without a new line.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing

import numpy as np

_NONE = type(None)


def _name(tp) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value, tp, where: str):
    """value as type tp (an annotation), or a ValueError that says what where should be."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        kinds = [a for a in args if a is not _NONE]
        errors = []
        for kind in kinds:
            try:
                return _coerce(value, kind, where)
            except ValueError as e:
                errors.append(str(e))
        allowed = " or ".join([_name(k) for k in kinds] + (["None"] if _NONE in args else []))
        raise ValueError(f"{where} must be {allowed}, not {value!r}." if len(errors) != 1 else errors[0])
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where} must be one of {args}, not {value!r}.")
        return value
    if origin is tuple or tp is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            raise ValueError(f"{where} must be a tuple (or list), not {type(value).__name__} {value!r}"
                             + (" (a string would be read one character at a time: wrap it, (text,))."
                                if isinstance(value, str) else "."))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"{where} must hold exactly {len(args)} values, not {len(value)}: {value!r}.")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))) if args else tuple(value)
    if tp is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError(f"{where} must be True or False, not {value!r}.")
    if tp is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            hint = " (a whole number)" if isinstance(value, numbers.Real) and not isinstance(value, bool) else ""
            raise ValueError(f"{where} must be an int{hint}, not {type(value).__name__} {value!r}.")
        return int(value)
    if tp is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ValueError(f"{where} must be a number, not {type(value).__name__} {value!r}.")
        if not math.isfinite(float(value)):
            raise ValueError(f"{where} must be a finite number, not {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, not {type(value).__name__} {value!r}.")
        return value
    return value  # other annotations (objects, callables): the config checks them itself


def check_fields(cfg, *, positive=(), nonneg=(), at_least: dict | None = None, between: dict | None = None,
                 choices: dict | None = None) -> None:
    """Check and normalise every field of dataclass cfg against its annotation (ints whole and not bool,
    floats finite, tuples not strings; lists become tuples, numpy scalars Python ones), then the ranges:
    ``positive`` > 0, ``nonneg`` >= 0, ``at_least={name: low}``, ``between={name: (low, high)}`` (closed),
    ``choices={name: allowed}``. A None value skips its range. Raises ValueError naming the field."""
    cls = type(cfg).__name__
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        if f.name not in hints or not f.init:
            continue
        value = getattr(cfg, f.name)
        new = _coerce(value, hints[f.name], f"{cls}: {f.name}")
        if new is not value and new != value or type(new) is not type(value):
            object.__setattr__(cfg, f.name, new)

    def bad(name, what):
        raise ValueError(f"{cls}: {name} must be {what}, not {getattr(cfg, name)!r}.")

    rules = [(n, lambda v: v > 0, "positive") for n in positive] + [(n, lambda v: v >= 0, "at least 0") for n in nonneg]
    rules += [(n, lambda v, lo=lo: v >= lo, f"at least {lo}") for n, lo in (at_least or {}).items()]
    rules += [(n, lambda v, r=r: r[0] <= v <= r[1], f"between {r[0]} and {r[1]}") for n, r in (between or {}).items()]
    rules += [(n, lambda v, c=c: v in c, f"one of {tuple(c)}") for n, c in (choices or {}).items()]
    for name, ok, what in rules:
        value = getattr(cfg, name)
        if value is not None and not ok(value):
            bad(name, what)
