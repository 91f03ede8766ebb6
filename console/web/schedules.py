"""Handlers of the schedules: list, add, change, run now, delete."""

import re

from console import schedules
from console.errors import HTTPError
from console.messages import translate
from console.web.http import MAX_ID, json_response, read_json_body

SCHEDULE_PATH = re.compile(r"/api/schedules/([0-9]{1,19})(/run)?")


def schedule_path(req):
    """(schedule id, whether it is the run address) of /api/schedules/ID[/run], or a 404/400."""
    match = SCHEDULE_PATH.fullmatch(req.path)
    if not match:
        if re.fullmatch(r"/api/schedules/[^/]*(/run)?", req.path):
            raise HTTPError(400, "The schedule id must be a positive whole number.")
        raise HTTPError(404, "Not found.")
    if not 0 < int(match.group(1)) <= MAX_ID:
        raise HTTPError(400, "The schedule id must be a positive whole number.")
    return int(match.group(1)), bool(match.group(2))


ADD_FIELDS = ("task_type", "every", "daily", "weekly", "params")
CHANGE_FIELDS = ADD_FIELDS + ("enabled",)


def only_fields(data, fields):
    """A 400 for a field a schedule does not take (a misspelt ``params``
    would otherwise drop its options without a word)."""
    for name in data:
        if name not in fields:
            raise HTTPError(400, "A schedule takes no field {name!r}: use {fields}.", name=str(name)[:40],
                            fields=", ".join(fields))


def spec_of(data, required):
    """When a schedule runs, from a request's every/daily/weekly; None if none given and not required."""
    given = {kind: data.get(kind) for kind in ("every", "daily", "weekly")}
    if not required and all(value is None for value in given.values()):
        return None
    return schedules.make_spec(**given)


def handle_schedules(req):
    """Every schedule, with its next run and how its last run went."""
    return json_response({"schedules": schedules.list_schedules(req.db, req.lang)})


def handle_schedule_add(req):
    """Add a schedule: JSON {"task_type", "every" | "daily" | "weekly", "params"}."""
    data = read_json_body(req, 64 * 1024)
    only_fields(data, ADD_FIELDS)
    spec = spec_of(data, required=True)
    schedule_id = schedules.add_schedule(req.settings, req.db, data.get("task_type"), spec, data.get("params"))
    return json_response({"success": True, "id": schedule_id,
                          "schedule": schedules.list_schedules(req.db, req.lang, schedule_id)[0]}, 201)


def handle_schedule_post(req):
    """POST /api/schedules/ID/run: run it now; POST /api/schedules/ID: change
    it (JSON: every, daily or weekly; params; enabled)."""
    schedule_id, run = schedule_path(req)
    if run:
        req.discard_body()
        outcome, task_id, template, values = schedules.run_now(req.settings, req.db, schedule_id)
        if outcome == "skipped":        # another task holds its place: the conflict's sentence and task
            raise HTTPError(409, template, extra={"taskId": values.get("id")}, **values)
        if outcome != "started":
            raise HTTPError(500, template, **values)
        return json_response({"success": True, "taskId": task_id}, 202)
    data = read_json_body(req, 64 * 1024)
    only_fields(data, CHANGE_FIELDS)
    row = schedules.get_schedule(req.db, schedule_id)
    if "task_type" in data and data["task_type"] != row["task_type"]:
        raise HTTPError(400, "A schedule's task type cannot be changed: add a new schedule instead.")
    enabled = data.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise HTTPError(400, "enabled must be true or false.")
    schedules.change_schedule(req.settings, req.db, schedule_id, spec_of(data, required=False),
                              data.get("params"), enabled)
    return json_response({"success": True, "schedule": schedules.list_schedules(req.db, req.lang, schedule_id)[0]})


def handle_schedule_delete(req):
    """Delete a schedule; the tasks it started stay."""
    schedule_id, run = schedule_path(req)
    if run:
        raise HTTPError(405, "This address does not accept {method}. Use {allowed}.", headers=[("Allow", "POST")],
                        method="DELETE", allowed="POST")
    req.discard_body()
    schedules.remove_schedule(req.db, schedule_id)
    return json_response({"success": True, "message": translate("Schedule {id} deleted.", req.lang, id=schedule_id)})
