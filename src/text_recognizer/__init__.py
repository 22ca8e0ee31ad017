"""text-recognizer: handwritten text recognition with PyTorch and Lightning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("text-recognizer")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
