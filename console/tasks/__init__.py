"""The task types' code: one module per type (named like the type, or as
its registry entry says), each with a ``run(ctx)`` that gets a
``runner.TaskContext``. Only the worker imports them.
"""

import importlib

from console import registry, runner


def load(task_type):
    """The ``run(ctx)`` function of a registered task type; KeyError if unknown."""
    return importlib.import_module("%s.%s" % (__name__, registry.module_of(task_type))).run


def run_task(task_id, db_path, api_url=None, auth=None, interval=0.5):
    """Claim and run one task in this process; returns the exit code (see runner.run_task)."""
    return runner.run_task(task_id, db_path, load, api_url, auth, interval)
