"""Text to typed value, as `--set KEY=VALUE` parses it: int, float, bool, str, lists and Optional.

Import-free (like `lab.errors`), so task generators (`tasks.mixture`'s knobs) parse their values
exactly as the command line does without importing the lab's config."""

from __future__ import annotations

import types
import typing
from typing import Any

from lab.errors import ConfigError

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def convert(text: str, annotation: Any, key: str) -> Any:
    """Parse `text` as a value of type `annotation`; a `ConfigError` naming `key` otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        return convert(text, options[0], key)
    if origin is list:
        (item,) = typing.get_args(annotation)
        parts = [p for p in text.strip("[]").split(",") if p.strip()]
        return [convert(p.strip(), item, key) for p in parts]
    if annotation is bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ConfigError(f"{key} expects true or false, got {text!r}")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(f"{key} expects {annotation.__name__}, got {text!r}") from None
    raise ConfigError(f"{key} cannot be set from the command line")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """`text` split at `sep` outside square brackets: "a=[1,2],b=3" -> ["a=[1,2]", "b=3"]."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "[") - (char == "]")
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]
