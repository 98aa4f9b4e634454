"""The tasks: one module per generator. The registry (`name -> Task class`) lives in `tasks.base`.

Importing this package registers the built-in tasks, in the order the sweeps list them.
"""

from __future__ import annotations

from tasks.base import (
    REGISTRY,
    Batch,
    ConfigError,
    Predictor,
    Schedule,
    Task,
    TaskConfig,
    TeacherForced,
    TrainDefaults,
    build_task,
    make_config,
    register,
    task_class,
    task_names,
)

# Importing the modules registers the tasks, in this order (the order the sweeps list them).
# isort: off
from tasks import induction  # noqa: F401
from tasks import polynomial  # noqa: F401
from tasks import graph_path  # noqa: F401
from tasks import mixture  # noqa: F401
# isort: on

__all__ = ["Batch", "ConfigError", "Predictor", "REGISTRY", "Schedule", "Task", "TaskConfig", "TeacherForced",
           "TrainDefaults", "build_task", "make_config", "register", "task_class", "task_names"]
