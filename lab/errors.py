"""`ConfigError`: a bad user-supplied value.

This module imports nothing, so every part of the lab (the model included) and every task
can raise it without loading anything else. `tasks.ConfigError` is this same class.
"""


class ConfigError(ValueError):
    """A bad user-supplied value. The CLI prints it as one line and exits with code 2."""
