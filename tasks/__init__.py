"""Task registry: `name -> Task class`. Each task lives in its own module."""

from __future__ import annotations

import dataclasses
from typing import Any

from tasks.base import Batch, ConfigError, Predictor, Task, TaskConfig, TeacherForced

REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available under `cls.name`."""
    REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(REGISTRY)


def make_config(name: str, overrides: dict[str, Any] | None = None) -> TaskConfig:
    """The task's config with `overrides` applied (unknown keys are a `ConfigError`)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
    config_cls = REGISTRY[name].Config
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides or {}) - fields)
    if unknown:
        raise ConfigError(f"unknown key task.{unknown[0]} for task {name!r}; known: {', '.join(sorted(fields))}")
    return config_cls(**(overrides or {}))


def build_task(name: str, overrides: dict[str, Any] | None = None) -> Task:
    """Instantiate task `name` with config overrides."""
    return REGISTRY[name](make_config(name, overrides))


# Importing the modules registers the tasks.
from tasks import graph_path, induction, polynomial  # noqa: E402,F401

__all__ = ["Batch", "ConfigError", "Predictor", "REGISTRY", "Task", "TaskConfig", "TeacherForced",
           "build_task", "make_config", "register", "task_names"]
