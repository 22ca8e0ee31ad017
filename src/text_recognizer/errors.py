"""Exceptions that carry a message a user can act on; the CLI prints them without a traceback."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TypeVar


class TextRecognizerError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(TextRecognizerError, ValueError):
    """A configuration key, value or name is wrong."""


class DataError(TextRecognizerError):
    """Data is missing, corrupt, or could not be downloaded."""


class ImageError(TextRecognizerError):
    """An input image cannot be read or is unusable."""


E = TypeVar("E", bound=TextRecognizerError)


def with_name(error: E, name: str | None) -> E:
    """``error`` led by ``name: `` (the file or page it is about), so that one bad image
    among many can be found; as it is where it names that already, or ``name`` is empty."""
    if not name or str(error).startswith(f"{name}: "):
        return error
    return type(error)(f"{name}: {error}")


#: The package a module is installed by, where their names differ (what pip is told).
PACKAGES = {"python_multipart": "python-multipart", "prometheus_client": "prometheus-client"}


def require_modules(modules: Sequence[str], needs: str, extra: str) -> None:
    """Fail before starting, naming the packages an optional part lacks and the extra that
    adds them: ``require_modules(["ray"], "sweeps need", "sweep")``."""
    if missing := [name for name in modules if importlib.util.find_spec(name) is None]:
        packages = ", ".join(PACKAGES.get(name, name) for name in missing)
        raise TextRecognizerError(f"{needs} {packages}: pip install 'text-recognizer[{extra}]'")
