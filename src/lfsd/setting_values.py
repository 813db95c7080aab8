"""How a setting's value is converted and checked: the rules ``Settings`` applies to each field, by its type.

They are the rules of pydantic's lax mode, which parsed ``Settings`` before (tests/test_settings_conversion.py pins
them): booleans from ``true``/``false``/``yes``/``no``/``on``/``off``/``y``/``n``/``t``/``f``/``1``/``0`` in any case;
integers from ASCII decimal strings with surrounding spaces, a sign, single underscores between digits and an optional
zero fraction; floats from decimal or exponent strings, finite only (pydantic let ``inf`` through, by accident);
paths as written; literals exactly; secrets wrapped so that no repr shows them.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

Convert = Callable[[object], object]

_TRUE: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE: Final = frozenset({"0", "off", "f", "false", "n", "no"})
_INTEGER: Final = re.compile(r"([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?", re.ASCII)
_FLOAT: Final = re.compile(
    r"[+-]?(?:[0-9]+(?:_[0-9]+)*(?:\.(?:[0-9]+(?:_[0-9]+)*)?)?|\.[0-9]+(?:_[0-9]+)*)"
    r"(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?",
    re.ASCII,
)


class Invalid(Exception):
    """One setting's value refused; ``message`` says why and never repeats a secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretStr:
    """A secret setting: ``get_secret_value()`` gives it; repr and str mask it (pydantic's ``SecretStr`` API)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Spec:
    """A setting's default, description and bounds; ``convert`` (filled in from the field's type) checks them."""

    default: object
    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    convert: Convert = field(default=lambda value: value, compare=False)


def setting(
    default: Any,
    *,
    description: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Any:
    """A ``Settings`` field: its default, and the spec its values are checked against."""
    spec = Spec(default, description, ge, gt, le, pattern, min_length, max_length)
    return field(default=default, metadata={"spec": spec})


def to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    raise Invalid("Input should be a valid boolean")


def to_int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return int(value)
        raise Invalid("Input should be a valid integer, got a number with a fractional part")
    if isinstance(value, str) and (match := _INTEGER.fullmatch(value.strip())) is not None:
        try:
            return int(match[1])
        except ValueError:  # past Python's limit on digits in a string (4300): no setting wants such a number
            raise Invalid("Input should be a valid integer, this one has too many digits") from None
    raise Invalid("Input should be a valid integer")


def to_float(value: object) -> float:
    """A finite number: ``inf`` and ``nan`` are refused (a duration of ``inf`` would never end)."""
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _FLOAT.fullmatch(value.strip()) is not None:
        number = float(value.strip())
    elif isinstance(value, str) and value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
        number = math.inf
    if number is None:
        raise Invalid("Input should be a valid number")
    if not math.isfinite(number):
        raise Invalid("Input should be a finite number")
    return number


def to_str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise Invalid("Input should be a valid string")


def to_path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str):
        return Path(value)
    raise Invalid("Input should be a valid path")


def to_secret(value: object) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    raise Invalid("Input should be a valid string")


def to_networks(value: object) -> tuple[IPv4Network | IPv6Network, ...]:
    """CIDRs, spaces or commas between them in a string; a bare address is a /32 or /128; host bits refused."""
    items: object = tuple(part for part in value.replace(",", " ").split() if part) if isinstance(value, str) else value
    if not isinstance(items, tuple | list):
        raise Invalid("Input should be a valid tuple")
    networks: list[IPv4Network | IPv6Network] = []
    for index, item in enumerate(items):
        if isinstance(item, IPv4Network | IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ip_network(item if isinstance(item, str) else "", strict=True))
        except ValueError:
            raise Invalid(f"item {index}: Input should be a valid IPv4 or IPv6 network") from None
    return tuple(networks)


def _number(value: float, spec: Spec) -> None:
    if spec.ge is not None and not value >= spec.ge:
        raise Invalid(f"Input should be greater than or equal to {_shown(spec.ge)}")
    if spec.gt is not None and not value > spec.gt:
        raise Invalid(f"Input should be greater than {_shown(spec.gt)}")
    if spec.le is not None and not value <= spec.le:
        raise Invalid(f"Input should be less than or equal to {_shown(spec.le)}")


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _text(value: str, spec: Spec) -> None:
    if spec.min_length is not None and len(value) < spec.min_length:
        raise Invalid(f"String should have at least {spec.min_length} characters")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise Invalid(f"String should have at most {spec.max_length} characters")
    # The whole string must match (pydantic's Rust regex: ``$`` is the end, never before a final newline).
    if spec.pattern is not None and re.fullmatch(spec.pattern.removeprefix("^").removesuffix("$"), value) is None:
        raise Invalid(f"String should match pattern '{spec.pattern}'")


def _choice(choices: tuple[str, ...]) -> Convert:
    expected = ", ".join(repr(choice) for choice in choices[:-1]) + f" or {choices[-1]!r}"

    def convert(value: object) -> object:
        if isinstance(value, str) and value in choices:
            return value
        raise Invalid(f"Input should be {expected}")

    return convert


_BY_TYPE: Final[dict[object, Convert]] = {
    bool: to_bool,
    int: to_int,
    float: to_float,
    str: to_str,
    Path: to_path,
    SecretStr: to_secret,
}


def converter_for(name: str, hint: object, spec: Spec) -> Convert:
    """The conversion and checks of a field annotated ``hint``: its type's rule, then ``spec``'s bounds."""
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        convert = converter_for(name, inner, spec)
        return lambda value: None if value is None else convert(value)
    if get_origin(hint) is Literal:
        return _choice(tuple(str(arg) for arg in args))
    if get_origin(hint) is tuple:
        return to_networks
    base = _BY_TYPE.get(hint)
    if base is None:
        raise TypeError(f"setting {name}: no conversion for {hint!r}")
    if hint in (int, float):

        def number(value: object) -> object:
            converted = base(value)
            _number(converted, spec)  # type: ignore[arg-type]
            return converted

        return number
    if hint is str:

        def text(value: object) -> object:
            converted = to_str(value)
            _text(converted, spec)
            return converted

        return text
    return base
