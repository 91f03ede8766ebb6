"""The refusals the rest of the console raises: ``HTTPError`` (a status and a
sentence, turned into the JSON error in one place by the web layer, or into
a message and an exit code by the command line) and the task store's own.
"""

from console import registry


class HTTPError(Exception):
    """Raised anywhere in a handler (or a check the command line shares);
    the app turns it into the JSON error."""

    def __init__(self, code, template, headers=None, extra=None, **values):
        super().__init__(code, template)
        self.status = code
        self.template = template
        self.values = values
        self.headers = headers or []
        self.extra = extra or {}


class TaskConflict(Exception):
    """A single-flight task type, or its exclusive group, already has an active task."""

    def __init__(self, task_type, active_id, active_type=None):
        super().__init__(task_type, active_id)
        self.task_type = task_type
        self.active_id = active_id
        self.active_type = active_type or task_type

    def message(self):
        """(template, values) of the sentence that explains the refusal."""
        labels = registry.labels()
        if self.active_type == self.task_type:
            return "A {what} is already running (task {id}).", {"what": labels[self.task_type], "id": self.active_id}
        return ("A {what} cannot start while a {other} runs (task {id}); try again when it has ended.",
                {"what": labels[self.task_type], "other": labels[self.active_type], "id": self.active_id})


class TaskStateError(Exception):
    """The task is not in a status that allows the requested change."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class AlreadyRetried(Exception):
    """A task is retried at most once; ``retry_id`` is the retry that exists."""

    def __init__(self, task_id, retry_id):
        super().__init__(task_id, retry_id)
        self.task_id = task_id
        self.retry_id = retry_id


class NotRetryable(Exception):
    """The task's type cannot be run again (its input is gone)."""
