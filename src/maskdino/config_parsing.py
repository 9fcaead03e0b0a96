"""Turning configs into plain data and back, and applying `dotted.key=value` overrides with type checks."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import types
import typing
from typing import Any

logger = logging.getLogger("maskdino.config")


def leaf_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a (nested) config dataclass instance."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(leaf_keys(value, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    return obj


def from_plain(cls: type, data: dict[str, Any], prefix: str = "", strict: bool = True) -> Any:
    """`cls(**data)` with every value coerced to its field's type (recursively for sections)."""
    field_types = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        if name not in field_types:
            if strict:
                raise KeyError(unknown_key_message(prefix + name, leaf_keys(cls(), prefix)))
            logger.warning("ignoring config key %r: not a setting of this version", prefix + name)
            continue
        kwargs[name] = coerce(field_types[name], value, prefix + name, strict)
    return cls(**kwargs)


def coerce(tp: Any, value: Any, key: str, strict: bool = True) -> Any:
    """`value` (from JSON/YAML or a command-line string) as type `tp`, or a ValueError naming the key."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"config key {key!r} is a section; give its fields, e.g. {key}.<field>=...")
        return from_plain(tp, value, key + ".", strict)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return coerce(next(a for a in args if a is not type(None)), value, key, strict)
    if origin is tuple:
        if isinstance(value, str):
            value = parse_sequence(value)
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(coerce(args[0] if args else str, v, key, strict) for v in value)
    if tp is bool:
        return _as_bool(value, key)
    if tp is int:
        return _as_int(value, key)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"config key {key!r} expects a number, got {value!r}") from None
    if tp is str:
        return str(value)
    return value


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"config key {key!r} expects true/false, got {value!r}")


def _as_int(value: Any, key: str) -> int:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != int(number):
        raise ValueError(f"config key {key!r} expects an integer, got {value!r}")
    return int(number)


def parse_sequence(text: str) -> list[str]:
    """ "a,b", "[a, b]" or "(a, b)" -> ["a", "b"]; "()" -> []."""
    text = text.strip()
    if text.startswith(("[", "(")) and text.endswith(("]", ")")):
        text = text[1:-1]
    return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]


def set_path(cfg: Any, key: str, raw: str) -> None:
    """Set the leaf `key` ("section.sub.field") of `cfg` to `raw` parsed as that field's type."""
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise KeyError(unknown_key_message(key, leaf_keys(cfg)))
        if i == len(parts) - 1:
            tp = typing.get_type_hints(type(node))[part]
            if dataclasses.is_dataclass(tp):
                raise KeyError(f"config key {key!r} is a section, not a value; e.g. {key}.<field>=...")
            setattr(node, part, coerce(tp, raw, key))
        else:
            node = getattr(node, part)


def unknown_key_message(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    if not close:
        leaf = key.split(".")[-1]
        close = [k for k in keys if k.split(".")[-1] == leaf][:3]
    hint = (
        f" Did you mean: {', '.join(close)}?" if close else " Run `maskdino presets --keys` to list all keys."
    )
    return f"unknown config key {key!r}.{hint}"
