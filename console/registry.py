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
# active whatever its type (the database enforces both); partial: whether
# some of its items may fail while the task completes (it is then "partial",
# and retryable for those items); module: the module under console/tasks
# that runs it, if not named like the type.
TaskType = collections.namedtuple("TaskType", "label label_zh unit single_flight retryable group partial module",
                                  defaults=(None, False, None))

TASK_TYPES = {
    "pin_sync": TaskType(label="Pin sync", label_zh="固定列表同步", unit="items",
                         single_flight=True, retryable=True, group="repository"),
    "file_upload": TaskType(label="File upload", label_zh="文件上传", unit="bytes",
                            single_flight=False, retryable=False),
    "pin_add": TaskType(label="Pin add", label_zh="添加固定", unit="items",
                        single_flight=False, retryable=True, partial=True),
    "pin_remove": TaskType(label="Pin removal", label_zh="取消固定", unit="items",
                           single_flight=False, retryable=True, partial=True),
    "repo_gc": TaskType(label="Garbage collection", label_zh="垃圾回收", unit="blocks",
                        single_flight=True, retryable=True, group="repository"),
    "pin_recover": TaskType(label="Pin recovery", label_zh="固定恢复", unit="items",
                            single_flight=True, retryable=True, partial=True),
    "car_import": TaskType(label="CAR import", label_zh="导入 CAR", unit="bytes",
                           single_flight=False, retryable=False, partial=True),
    "repo_verify": TaskType(label="Repository verification", label_zh="校验仓库", unit="blocks",
                            single_flight=True, retryable=True, partial=True),
    "task_cleanup": TaskType(label="Task cleanup", label_zh="清理旧任务", unit="items",
                             single_flight=True, retryable=True),
    "name_follow": TaskType(label="Name follow", label_zh="跟随名称", unit="items",
                            single_flight=False, retryable=True),
    "psa_queue": TaskType(label="Pinning service queue", label_zh="固定服务队列", unit="items",
                          single_flight=True, retryable=False, partial=True),
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
                   "single_flight": kind.single_flight, "retryable": kind.retryable, "group": kind.group,
                   "partial": kind.partial}
            for name, kind in TASK_TYPES.items()}
