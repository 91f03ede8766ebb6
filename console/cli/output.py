"""What the command line prints for people (``--json`` prints for scripts):
counts with their nouns, sizes, a task's or the node's fields, a task's
progress line and the sentences that say how it ended.
"""

import re

from console import registry

NOTHING = "\u2014"      # an em dash: no value
BAR_WIDTH = 30
# Fields that hold a number of bytes: size, dag_size, size_before,
# bytes_freed, repo_size, storage_max...
SIZE_FIELD = re.compile(r"(^|_)(size|bytes)(_|$)|^storage_max$")


def count(number, noun, plural=None):
    """'1 line', '3 lines', '0 CIDs': the noun agrees with the number."""
    return "%d %s" % (number, noun if number == 1 else plural or noun + "s")


def size(number):
    """Bytes as a person reads them, in binary units with one decimal: '512 B', '1.5 KiB', '3.0 GiB'."""
    if number < 1024:
        return "%d B" % number
    value = float(number)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1023.95 or unit == "PiB":
            return "%.1f %s" % (value, unit)


def unit_of(task_type):
    """What a task type's progress counts: "items", "bytes" or "blocks" (the registry's)."""
    kind = registry.TASK_TYPES.get(task_type)
    return kind.unit if kind else "items"


def amount(number, unit):
    """A quantity in a registry unit: '1 block', '3 blocks', '1.5 MiB'."""
    return size(number) if unit == "bytes" else count(number, unit[:-1], unit)


def progress_line(task):
    """A task's progress: a bar and 'done / total' while the total is known,
    else just what it has done so far ('3 blocks'); then its status."""
    unit = unit_of(task["task_type"])
    done, total = task["progress"] or 0, task["total"] or 0
    if total <= 0:
        return "%s  %s" % (amount(done, unit), task["status"])
    filled = BAR_WIDTH * task["percentage"] // 100
    so_far = "%s / %s" % (size(done), size(total)) if unit == "bytes" else "%d / %s" % (done, amount(total, unit))
    return "[%s%s] %3d%%  %s  %s" % ("#" * filled, "." * (BAR_WIDTH - filled), task["percentage"], so_far,
                                     task["status"])


def shown(value, name=""):
    """One value as text (of the field ``name``): sizes in binary units,
    NOTHING for no value."""
    if value is None or value == "" or value == [] or value == {}:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and SIZE_FIELD.search(name):
        return size(value)
    if isinstance(value, (int, float)) and name.endswith("_s"):
        return "%s s" % value
    if isinstance(value, dict):
        return ", ".join("%s: %s" % (key, shown(item, key)) for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(shown(item, name) for item in value)
    return str(value)


def field_lines(fields, depth=0, sizes=(), width=0):
    """``key  value`` lines, values aligned (with those of the object
    around, ``width``); a non-empty object's fields follow its name,
    indented, and a list of objects one '- ' line each. ``sizes`` names
    more fields that hold bytes."""
    indent = "  " * depth
    width = max([width] + [len(indent + key) + 2 for key in fields])
    lines = []
    for key, value in fields.items():
        label = indent + key
        if isinstance(value, dict) and value:
            lines.append(label)
            lines.extend(field_lines(value, depth + 1, width=width))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            lines.append(label)
            lines.extend("%s  - %s" % (indent, shown(item, key)) for item in value)
        else:
            text = size(value) if key in sizes and isinstance(value, int) else shown(value, key)
            lines.append("%-*s%s" % (width, label, text))
    return lines


def task_lines(task):
    """A task's fields for a person: its progress in its unit's terms."""
    sizes = ("progress", "total") if unit_of(task["task_type"]) == "bytes" else ()
    return field_lines(task, sizes=sizes)


def not_cids(summary, where):
    """Which ``where`` ("line" or "argument") were not CIDs: '1 line is not a
    CID (line 4).', '3 arguments are not CIDs (arguments 2, 5, 9).'"""
    invalid, numbers = summary["invalid"], summary["invalid_lines"]
    said = ", ".join(map(str, numbers)) + (", ..." if len(numbers) < invalid else "")
    if invalid == 1:
        return "1 %s is not a CID (%s %s)." % (where, where, said)
    return "%d %ss are not CIDs (%ss %s)." % (invalid, where, where, said)


def partial_failure(task):
    """'Task 7 completed, 2 of 5 CIDs failed: CID: the first error' for a
    task that completed with failed items; None for any other."""
    result = task.get("result") or {}
    failed = result.get("failed") or 0
    if task["status"] != "completed" or not (task.get("partial") or failed > 0):
        return None
    tried = result.get("total") or (result.get("done") or 0) + failed
    sentence = "Task %d completed, %d of %s failed" % (task["id"], failed, count(tried, "CID"))
    first = (result.get("error_details") or [{}])[0]
    if first.get("error"):
        sentence += ": " + ("%s: %s" % (first["cid"], first["error"]) if first.get("cid") else first["error"])
    return sentence


def damage_found(task):
    """'Task 7 completed, 2 blocks damaged', then a line for each block named
    (its CID, what is wrong, its pins), for a verification that found damage;
    None for any other task."""
    result = task.get("result") or {}
    failed = result.get("failed") or 0
    if task["status"] != "completed" or not failed:
        return None
    lines = ["Task %d completed, %s damaged" % (task["id"], count(failed, "block"))]
    lines += ["  %s: %s" % (detail.get("cid"), detail.get("error")) for detail in result.get("error_details") or []]
    return "\n".join(lines)
