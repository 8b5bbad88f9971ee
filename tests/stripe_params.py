"""
Request parameters checked against the pinned SDK's own parameter types (``stripe.params``),
the way Stripe checks them: unknown names at any depth, enum values, integers and booleans,
and empty strings, which Stripe reads as "unset" and refuses for a parameter whose type has
no ``Literal['']``.

Parameters arrive form-decoded (strings, dicts and lists), as the emulator receives them.
"""

from __future__ import annotations

import re
import sys
import typing
from functools import cache
from typing import Any, ForwardRef, Literal, Union

import typing_extensions

# typing has NotRequired and Required from Python 3.11 on.
_NOT_REQUIRED = {typing_extensions.NotRequired, *filter(None, [getattr(typing, "NotRequired", None)])}
_REQUIRED = {typing_extensions.Required, *filter(None, [getattr(typing, "Required", None)])}
_LITERAL = {Literal, typing_extensions.Literal}
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class ParamError(Exception):
    """A parameter Stripe would refuse: ``code`` and ``param`` as in Stripe's error body."""

    def __init__(self, message: str, code: str, param: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def _is_typed_dict(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, dict) and hasattr(annotation, "__annotations__")


@cache
def _fields(params_type: type) -> dict[str, Any]:
    """A params TypedDict's fields, their string annotations evaluated in the SDK module's names."""
    namespace = {**vars(typing), **vars(typing_extensions), **vars(sys.modules[params_type.__module__])}
    fields: dict[str, Any] = {}
    for klass in reversed(params_type.__mro__):
        for name, annotation in getattr(klass, "__annotations__", {}).items():
            fields[name] = (annotation, namespace)
    return fields


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(annotation, str):
        annotation = ForwardRef(annotation)
    if isinstance(annotation, ForwardRef):
        try:
            return _resolve(eval(annotation.__forward_arg__, namespace), namespace)
        except NameError:
            return Any
    return annotation


def _alternatives(annotation: Any, namespace: dict[str, Any]) -> list[Any]:
    """The types a value may have, with NotRequired, Required and unions flattened."""
    annotation = _resolve(annotation, namespace)
    origin = typing.get_origin(annotation)
    if origin in _NOT_REQUIRED or origin in _REQUIRED:
        return _alternatives(typing.get_args(annotation)[0], namespace)
    if origin is Union or type(annotation).__name__ == "UnionType":
        return [alt for arg in typing.get_args(annotation) for alt in _alternatives(arg, namespace)]
    return [annotation]


def _literals(alternatives: list[Any]) -> set[Any]:
    return {value for alt in alternatives if typing.get_origin(alt) in _LITERAL for value in typing.get_args(alt)}


def conform(params_type: type, params: Any, path: str = "") -> None:
    """Raise ParamError where ``params`` (form-decoded) contradict ``params_type``."""
    if not isinstance(params, dict):
        raise ParamError(f"Invalid object: {path}", "parameter_invalid_object", path)
    fields = _fields(params_type)
    for name, value in params.items():
        param = f"{path}[{name}]" if path else name
        if name not in fields:
            raise ParamError(f"Received unknown parameter: {param}", "parameter_unknown", param)
        annotation, namespace = fields[name]
        _check(_alternatives(annotation, namespace), value, param, namespace)


def _check(alternatives: list[Any], value: Any, param: str, namespace: dict[str, Any]) -> None:
    literals = _literals(alternatives)
    if value == "":
        if "" in literals:
            return
        raise ParamError(
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request "
            "or supply a non-empty value.",
            "parameter_invalid_empty",
            param,
        )
    enum = literals - {""}
    if enum and isinstance(value, str) and value not in enum:
        # The SDK types enums as ``Literal[...]|str`` to accept values of later versions;
        # Stripe, at the pinned version, takes only the listed ones. Other types stand
        # (``Literal['now']|int`` takes a timestamp).
        alternatives = [alt for alt in alternatives if alt is not str and typing.get_origin(alt) not in _LITERAL]
        if not alternatives:
            expected = ", ".join(sorted(str(item) for item in enum))
            raise ParamError(f"Invalid {param}: must be one of {expected}", "", param)
    errors: list[ParamError] = []
    for alt in alternatives:
        try:
            _check_one(alt, value, param, namespace)
            return
        except ParamError as err:
            errors.append(err)
    # The most specific refusal: one from inside a nested object, else the first.
    nested = [err for err in errors if err.param != param]
    raise (nested or errors or [ParamError(f"Invalid {param}", "parameter_invalid", param)])[0]


def _check_one(annotation: Any, value: Any, param: str, namespace: dict[str, Any]) -> None:
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is object:
        return
    if origin in _LITERAL:
        if value not in typing.get_args(annotation):
            raise ParamError(f"Invalid {param}", "", param)
        return
    if annotation is str:
        if not isinstance(value, str):
            raise ParamError(f"Invalid string: {param}", "parameter_invalid_string", param)
        return
    if annotation is bool:
        if value not in ("true", "false", True, False):
            raise ParamError(f"Invalid boolean: {value}", "parameter_invalid_boolean", param)
        return
    if annotation is int:
        if not (isinstance(value, int) or (isinstance(value, str) and _INTEGER.match(value))):
            raise ParamError(f"Invalid integer: {value}", "parameter_invalid_integer", param)
        return
    if annotation is float:
        if not (isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.match(value))):
            raise ParamError(f"Invalid decimal: {value}", "parameter_invalid_decimal", param)
        return
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            raise ParamError(f"Invalid array: {param}", "parameter_invalid_array", param)
        (item_type,) = typing.get_args(annotation) or (Any,)
        for index, item in enumerate(value):
            _check(_alternatives(item_type, namespace), item, f"{param}[{index}]", namespace)
        return
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            raise ParamError(f"Invalid object: {param}", "parameter_invalid_object", param)
        return
    if _is_typed_dict(annotation):
        conform(annotation, value, param)
        return
    # A type the check does not model (an untyped Stripe object, say): accepted.
