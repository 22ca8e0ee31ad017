"""Exceptions that carry a message a user can act on; the CLI prints them without a traceback."""


class TextRecognizerError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(TextRecognizerError, ValueError):
    """A configuration key, value or name is wrong."""


class DataError(TextRecognizerError):
    """Data is missing, corrupt, or could not be downloaded."""


class ImageError(TextRecognizerError):
    """An input image cannot be read or is unusable."""
