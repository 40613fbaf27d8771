"""The typed errors the engine raises, and the one input-check helper.

Every message names what was wrong and ends with "Got: ..." where a value was
at fault, so the GUI can show it to the user as it is.
"""

from __future__ import annotations


class GanvasError(Exception):
    """Base of every error GANvas reports to the user."""


class ImageError(GanvasError):
    """An image file that cannot be read or written."""


class CheckpointError(GanvasError):
    """A model file that cannot be loaded safely."""


class ModelNotFound(GanvasError):
    """A model id or path that resolves to no file."""


class Cancelled(GanvasError):
    """A long job stopped because its cancel token was set."""


def check(condition: bool, message: str, error: type[GanvasError] = GanvasError) -> None:
    """Raise ``error(message)`` unless ``condition`` holds."""
    if not condition:
        raise error(message)
