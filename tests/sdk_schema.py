"""The dashboard schema as grafana-foundation-sdk expresses it: the type annotations of its
models, checked over a model decoded with the SDK's own ``from_json``.

``from_json`` copies values as they are (an unknown enum value or a string where a number
belongs passes through), so decoding alone proves only that the keys are known. This walks the
decoded model and checks every attribute against its annotation: enums (thresholds mode, legend
placement, cursor sync...), literals, numbers, strings, lists and nested models, including the
panel plugins' options and field configs, which the panel holds as ``object``.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any


def schema_errors(model: object, path: str = "dashboard") -> list[str]:
    errors: list[str] = []
    _walk(model, path, errors)
    return errors


def _walk(obj: object, path: str, errors: list[str]) -> None:
    for name, hint in typing.get_type_hints(type(obj)).items():
        if not name.startswith("_"):
            _check(getattr(obj, name), hint, f"{path}.{name}", errors)


def _is_sdk_model(value: object) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.models.")


def _check(value: Any, hint: Any, path: str, errors: list[str]) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        if _is_sdk_model(value):
            _walk(value, path, errors)  # a panel plugin's options or field config
        return
    if origin in (typing.Union, types.UnionType):
        _check_union(value, args, path, errors)
        return
    if value is None:
        if hint is not type(None):
            errors.append(f"{path}: null where {hint} belongs")
        return
    if origin is typing.Literal:
        if value not in args:
            errors.append(f"{path}: {value!r} is not one of {args}")
    elif origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: {type(value).__name__} where a list belongs")
            return
        for i, item in enumerate(value):
            _check(item, args[0], f"{path}[{i}]", errors)
    elif origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: {type(value).__name__} where an object belongs")
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            hint(value)
        except ValueError:
            errors.append(f"{path}: {value!r} is not a {hint.__name__}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: {value!r} is not a number")
    elif hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            errors.append(f"{path}: {value!r} is not {hint.__name__}")
    elif isinstance(hint, type):
        if isinstance(value, dict) and hasattr(hint, "from_json"):
            value = hint.from_json(value)  # some lists the SDK's from_json leaves undecoded
        if not isinstance(value, hint):
            errors.append(f"{path}: {type(value).__name__} where {hint.__name__} belongs")
            return
        _walk(value, path, errors)
    else:
        errors.append(f"{path}: no check for {hint}")


def _check_union(value: Any, args: tuple[Any, ...], path: str, errors: list[str]) -> None:
    exact = [a for a in args if isinstance(a, type) and type(value) is a]
    if exact:
        _check(value, exact[0], path, errors)
        return
    candidates = [a for a in args if value is None or a is not type(None)]
    attempts = []
    for candidate in candidates:
        found: list[str] = []
        _check(value, candidate, path, found)
        if not found:
            return
        attempts.append(found)
    errors.extend(min(attempts, key=len) if attempts else [f"{path}: {value!r} fits no type"])
