"""The registry of task types: their names and what is known of each, not
their code.

The server, the command line and the pages (through ``/api/info``) read it;
importing it imports no task. Each type's code is the ``run(ctx)`` function
of the module ``console/tasks/<module>.py`` (``module`` defaults to the
type's name), which only the worker loads. Adding a task type is one module
and one entry here.
"""

import collections

# label, label_zh: its name for people (English, Chinese); unit: what
# progress counts ("items", "bytes" or "blocks"); single_flight: at most one
# active task of the type; retryable: whether a failed or cancelled one can
# be started again; group: an exclusive group, of which at most one task is
# active whatever its type (the database enforces both); module: the module
# under console/tasks that runs it, if not named like the type.
TaskType = collections.namedtuple("TaskType", "label label_zh unit single_flight retryable group module",
                                  defaults=(None, None))

TASK_TYPES = {
    "pin_sync": TaskType(label="Pin sync", label_zh="Pin 同步", unit="items",
                         single_flight=True, retryable=True, group="repository"),
    "file_upload": TaskType(label="File upload", label_zh="文件上传", unit="bytes",
                            single_flight=False, retryable=False),
    "pin_add": TaskType(label="Pin add", label_zh="添加 Pin", unit="items",
                        single_flight=False, retryable=True),
    "pin_remove": TaskType(label="Pin removal", label_zh="移除 Pin", unit="items",
                           single_flight=False, retryable=True),
    "repo_gc": TaskType(label="Garbage collection", label_zh="垃圾回收", unit="blocks",
                        single_flight=True, retryable=True, group="repository"),
    "pin_recover": TaskType(label="Pin recovery", label_zh="Pin 恢复", unit="items",
                            single_flight=True, retryable=True),
    "car_import": TaskType(label="CAR import", label_zh="导入 CAR", unit="bytes",
                           single_flight=False, retryable=False),
    "repo_verify": TaskType(label="Repository verification", label_zh="校验仓库", unit="blocks",
                            single_flight=True, retryable=True),
}


def module_of(task_type):
    """The name of the module under console/tasks that runs ``task_type``; KeyError if unknown."""
    return TASK_TYPES[task_type].module or task_type


def labels():
    """{type: {"en": "pin sync", "zh": "Pin 同步"}}: the names a sentence uses
    (an initialism keeps its capitals: "CAR import")."""
    return {name: {"en": kind.label if kind.label[1:2].isupper() else kind.label[0].lower() + kind.label[1:],
                   "zh": kind.label_zh}
            for name, kind in TASK_TYPES.items()}


def info():
    """The registry as the pages and scripts read it (GET /api/info)."""
    return {name: {"label": {"en": kind.label, "zh": kind.label_zh}, "unit": kind.unit,
                   "single_flight": kind.single_flight, "retryable": kind.retryable, "group": kind.group}
            for name, kind in TASK_TYPES.items()}
