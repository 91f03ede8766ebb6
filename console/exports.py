"""Exports: the catalogue and the task list as CSV or JSON lines, produced a
chunk at a time for the downloads of the web console and the command line
alike, so that a million pins never sit in memory.

CSV follows RFC 4180 (the ``csv`` module: a field with a comma, a quote or a
line break is quoted, a quote doubled; lines end in CRLF), in UTF-8 without
a byte-order mark, so its header line is exactly the column names. A value
that is unknown is an empty field in CSV and ``null`` in JSON lines.
"""

import csv
import io
import json

from console.catalogue import PIN_COLUMNS, stream_pins
from console.store import connect, stream_tasks, task_as_json

# Each format of the pin export, with its content type.
PIN_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

# The task list's columns: what a spreadsheet of past tasks needs (what ran,
# how it ended, how much it did and how long it took). The rest of a task
# (its result, parameters, pid) is in /api/tasks and `show ID --json`.
TASK_COLUMNS = ("id", "task_type", "status", "progress", "total", "percentage", "partial", "created_at",
                "started_at", "completed_at", "duration_s", "error_message")

# Rows are gathered into pieces of about this many bytes: few enough writes
# to be fast, small enough that memory stays flat.
CHUNK_BYTES = 64 * 1024


def csv_chunks(columns, rows):
    """A header line of ``columns``, then each row (a sequence of values in
    that order), as UTF-8 CSV in pieces of about CHUNK_BYTES."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def jsonl_chunks(columns, rows):
    """Each row as one JSON object (keys ``columns``) a line, UTF-8, in
    pieces of about CHUNK_BYTES."""
    lines, size = [], 0
    for row in rows:
        line = json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n"
        lines.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield "".join(lines).encode("utf-8")
            lines, size = [], 0
    yield "".join(lines).encode("utf-8")


def pin_export(conn, fmt, q="", status="", sort="-synced"):
    """The pins that match the search and filter (as ``/api/pins``), all of
    them, in ``fmt`` (a key of PIN_FORMATS), as byte pieces."""
    chunks = csv_chunks if fmt == "csv" else jsonl_chunks
    return chunks(PIN_COLUMNS, stream_pins(conn, q, status, sort))


def task_export(conn, status=None, task_type=None):
    """Every task that matches the filters, newest first, as CSV byte pieces."""
    tasks = (task_as_json(row) for row in stream_tasks(conn, status, task_type))
    rows = ([_csv_value(task[column]) for column in TASK_COLUMNS] for task in tasks)
    return csv_chunks(TASK_COLUMNS, rows)


def _csv_value(value):
    """JSON's words for true and false, which a spreadsheet reads as such."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def on_own_connection(path, export, *args):
    """``export(conn, *args)``'s pieces read on a connection of their own:
    a streamed answer outlives its request's pooled connection. The
    connection opens at the first piece asked for (an answer never sent
    opens nothing) and closes at the end, or when the reader goes away and
    the server closes this generator."""
    conn = connect(path)
    try:
        yield from export(conn, *args)
    finally:
        conn.close()
