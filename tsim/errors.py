"""The one error type of user input that names a config field; the bottom of the package (no imports)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A bad config value. ``field`` is the dotted name (``train.lr``); the message names the rule,
    the value and the fix. Only ``tsim.cli`` turns it into one line on stderr and exit code 2."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)
