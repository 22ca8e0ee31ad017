"""Build datasets and networks by name from plain ``dict`` arguments (timm style).

The constructor's signature is the schema: unknown keys and wrongly typed values are
rejected with a message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import pydantic

from text_recognizer.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> constructor table for one kind of component."""

    def __init__(
        self, kind: str, set_elsewhere: Mapping[str, str] | None = None, own: str = ""
    ) -> None:
        """``set_elsewhere``: where a config sets a value the code passes in itself (seed,
        batch size), for the error when it is given among the arguments too. ``own``: how
        a component of one's own is added, for the error that names an unknown one (a
        checkpoint of a user's network, opened where it was not registered)."""
        self.kind = kind
        self.set_elsewhere = dict(set_elsewhere or {})
        self.own = own
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """A decorator adding a constructor under ``name`` (a config's ``name:``); a
        name taken already is refused, so that no built-in one is replaced unnoticed."""

        def add(constructor: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = constructor
            return constructor

        return add

    def names(self) -> list[str]:
        """Every registered name, sorted (what errors list as allowed)."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        """The constructor of ``name``; a ``ConfigError`` listing the names where unknown."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}"
                + (f"; {self.own}" if self.own else "")
            ) from None

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The constructor's keyword parameters (what a config may set)."""
        signature = inspect.signature(self.get(name))
        return {
            p.name: p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def build(self, name: str, args: Mapping[str, Any] | None = None, /, **injected: Any) -> T:
        """Construct ``name`` with ``args`` from a config plus ``injected`` values from code."""
        constructor = self.get(name)
        args = dict(args or {})
        allowed = self.parameters(name)
        settable = sorted(set(allowed) - set(injected))
        for key in args:
            if key in injected and key in allowed:  # else: two values for one parameter
                where = self.set_elsewhere.get(key, "it is set for it")
                raise ConfigError(
                    f"{self.kind} {name!r}: {key!r} is not given among its arguments: {where}"
                )
            if key not in allowed:
                raise ConfigError(
                    f"{self.kind} {name!r} has no argument {key!r}; "
                    + (f"allowed: {', '.join(settable)}" if settable else "it takes none")
                )
        return constructor(**self._validate(name, args), **self.accepted(name, injected))

    def accepted(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The part of ``values`` that the constructor takes (all, given ``**kwargs``)."""
        signature = inspect.signature(self.get(name))
        if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return dict(values)
        allowed = self.parameters(name)
        return {k: v for k, v in values.items() if k in allowed}

    def _validate(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Check config values against the constructor's type hints (coercing "1e-3" etc.)."""
        constructor = self.get(name)
        target = constructor.__init__ if inspect.isclass(constructor) else constructor
        hints = typing.get_type_hints(target)
        fields: dict[str, Any] = {key: (hints.get(key, Any), ...) for key in args}
        model = pydantic.create_model(
            f"{name}_args", __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields
        )
        try:
            validated = model(**args)
        except pydantic.ValidationError as error:
            # A union reports an error per member type; the one that got deepest into the
            # value names the part that is wrong (lines_per_page=[2, "x"]: the "x").
            first = max(error.errors(), key=lambda e: len(e["loc"]))
            # Past the argument, a location holds item indices and the union members'
            # type names ('int', 'list[int]'), which mean nothing in a config.
            loc = first["loc"]
            key = ".".join(str(p) for p in (loc[0], *(p for p in loc[1:] if isinstance(p, int))))
            raise ConfigError(
                f"{self.kind} {name!r}: argument {key!r} = {first.get('input')!r} is invalid: "
                f"{first['msg']}"
            ) from None
        return {key: getattr(validated, key) for key in args}
