// Background tasks as the pages show them: their state in words, progress
// bars, results, cancel and retry, watching one task until it ends, telling
// the reader how it ended, and the panel that shows one task on the pins page.

import {
  cidView, dismissButton, dismissToast, el, fill, formatBytes, formatDuration, formatNumber, getJSON,
  parseServerTime, Poller, postJSON, setTitleProgress, t, taskTypeLabel, taskUnit, toast, translateTaskMessage,
} from "./common.js";

// ---------------------------------------------------------------------------
// A task's state
// ---------------------------------------------------------------------------

const ACTIVE = ["pending", "running"];
export const isActive = (task) => ACTIVE.includes(task.status);

/** How many of its items a task failed. */
export function failedCount(task) {
  return (task.result && typeof task.result.failed === "number" && task.result.failed) || 0;
}

/**
 * A task that completed with some of its items failed. The server says so
 * (`partial`); a server that does not yet is read the way it will.
 */
export function isPartial(task) {
  if ("partial" in task) return Boolean(task.partial);
  return task.status === "completed" && failedCount(task) > 0;
}

/** A task the server lets start again that nobody has retried yet (one retry per task). */
export function canRetry(task) {
  const ended = task.status === "failed" || task.status === "cancelled" || isPartial(task);
  return ended && Boolean(task.retryable) && !task.retried_by;
}

/** Seconds from start (or creation) to the end, or to now while active; to the millisecond when known. */
export function taskDuration(task) {
  if (!isActive(task) && typeof task.duration_s === "number") return task.duration_s;
  const start = parseServerTime(task.started_at_precise || task.started_at || task.created_at);
  if (!start) return null;
  const end = parseServerTime(task.completed_at_precise || task.completed_at);
  return ((end ? end.getTime() : Date.now()) - start.getTime()) / 1000;
}

/** The task's error message, unless it only repeats its status ("Cancelled"). */
export function taskMessage(task) {
  if (!task.error_message || (task.status === "cancelled" && task.error_message === "Cancelled")) return "";
  return translateTaskMessage(task.error_message);
}

/** Whether a bar says anything: not for a task that ended before its total was known. */
export function hasProgress(task) {
  return isActive(task) || task.total > 0 || task.status === "completed";
}

/** "Running", "Completed", or "Completed, 3 failed". */
export function statusText(task) {
  return isPartial(task) ? t("status.partial", { n: formatNumber(failedCount(task)) }) : t(`status.${task.status}`);
}

export function statusBadge(task) {
  return el("span", { class: `badge badge-${isPartial(task) ? "partial" : task.status}` }, statusText(task));
}

/** A progress bar; indeterminate while the total is unknown. */
export function progressBar(task, label) {
  const fill = el("div", { class: "progress-fill" });
  const bar = el("div", { class: "progress", role: "progressbar", "aria-label": label || t("col.progress") }, fill);
  const known = task.total > 0 || task.status === "completed";
  const indeterminate = !known && isActive(task);
  bar.classList.toggle("indeterminate", indeterminate);
  bar.dataset.status = isPartial(task) ? "partial" : task.status;
  if (indeterminate) return bar;
  const fraction = task.status === "completed" ? 1 : Math.min(1, task.progress / task.total || 0);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(task.percentage));
  bar.setAttribute("aria-valuetext", progressText(task) || statusText(task));
  // The bar is updated in place (see fill), so the change is a transition.
  fill.style.width = `${(fraction * 100).toFixed(2)}%`;
  return bar;
}

/** A count in the task's unit: "1.2 MiB", "1,234", "1,234 blocks". */
function inUnit(task, value) {
  const unit = taskUnit(task);
  if (unit === "bytes") return formatBytes(value);
  return unit === "blocks" ? t("unit.blocks", { n: formatNumber(value) }) : formatNumber(value);
}

/** "1,234 / 5,000 · 24%", in the task's unit; "10 / 10 · 3 failed" for a partial task. */
export function progressText(task) {
  if (!task.total) return task.progress ? inUnit(task, task.progress) : "";
  const counts = t("task.items", { progress: formatNumber(task.progress), total: inUnit(task, task.total) });
  if (isPartial(task)) return `${counts} · ${t("task.failedCount", { n: formatNumber(failedCount(task)) })}`;
  return `${counts} · ${task.percentage}%`;
}

/** "120 items/s · about 2 min left", or "" while unknown. */
export function rateText(task, meter) {
  if (task.status !== "running" || !meter) return "";
  const rate = meter.rate(task);
  if (!rate) return "";
  const unit = taskUnit(task);
  const speed = unit === "bytes" ? t("rate.bytes", { n: formatBytes(rate) })
    : t(unit === "blocks" ? "rate.blocks" : "rate.items", { n: formatNumber(rate, rate < 10 ? 1 : 0) });
  if (!task.total || task.progress >= task.total) return speed;
  return `${speed} · ${t("eta", { d: formatDuration((task.total - task.progress) / rate, { coarse: true }) })}`;
}

/** What the worker is on now, in words (the fetching notes) or as a CID. */
export function currentItemView(task) {
  const item = task.current_item;
  if (!item) return null;
  if (/^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{50,})$/.test(item)) return cidView(item);
  return el("span", {}, translateTaskMessage(item));
}

/**
 * The speed of a task from successive polls (a sliding window), and from its
 * start time until there are two polls to compare.
 */
export class RateMeter {
  constructor(windowMs = 10000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(task) {
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (last && task.progress < last.progress) this.samples = [];
    this.samples.push({ time: now, progress: task.progress });
    while (this.samples.length > 2 && now - this.samples[0].time > this.windowMs) this.samples.shift();
  }

  /** Units a second, or null while unknown. */
  rate(task) {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first && last.time - first.time >= 1500 && last.progress > first.progress) {
      return ((last.progress - first.progress) * 1000) / (last.time - first.time);
    }
    const started = parseServerTime(task.started_at);
    const elapsed = started ? (Date.now() - started.getTime()) / 1000 : 0;
    return task.progress > 0 && elapsed >= 1 ? task.progress / elapsed : null;
  }
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

// The counts a result may hold, in the order they are shown; sizes in bytes.
const RESULT_COUNTS = ["added", "updated", "removed", "unchanged", "done", "duplicates", "failed", "invalid",
  "blocks_removed", "bytes_freed", "errors", "pinned", "unpinned", "requeued"];
const RESULT_BYTES = ["bytes_freed"];

/** A link that opens a CID on the gateway, in a new tab. */
export function gatewayLink(cid, gateway, label = null) {
  if (!gateway || !cid) return null;
  return el("a", {
    class: "gateway-link", href: `${gateway}/ipfs/${cid}`, target: "_blank", rel: "noopener noreferrer",
    title: t("gateway.open"),
  }, label || t("gateway.link"));
}

/** What a task's failed items are, by its type: "CIDs that could not be pinned". */
function detailsLabel(task) {
  const key = `details.${task.task_type}`;
  return t(key) === key ? t("details.other") : t(key);
}

/** The first failures with the node's sentence for each, under a label that says what they are. */
function errorDetailsView(task) {
  const result = task.result;
  const details = Array.isArray(result.error_details) ? result.error_details : [];
  if (!details.length) return null;
  const failed = failedCount(task);
  const count = failed > details.length
    ? t("details.firstOf", { shown: formatNumber(details.length), n: formatNumber(failed) })
    : formatNumber(details.length);
  return el("details", { class: "error-details" },
    el("summary", {}, t("details.summary", { label: detailsLabel(task), count })),
    el("ul", {}, details.map((item) => {
      const what = item.cid ? cidView(String(item.cid)) : item.path || item.name
        ? el("code", {}, String(item.path || item.name)) : null;
      return el("li", {}, what, " ", el("span", { class: "error-text" }, translateTaskMessage(item.error)));
    })));
}

/** The counts a result holds, as small labelled boxes. */
function countsView(result, counts) {
  const shown = (key) => (RESULT_BYTES.includes(key) ? formatBytes(result[key]) : formatNumber(result[key] || 0));
  return el("dl", { class: "counts" }, counts.map((key) => el("div", {
    class: `count count-${key}${result[key] ? " nonzero" : ""}`,
  }, el("dt", {}, t(`result.${key}`)), el("dd", {}, shown(key)))));
}

/** "10 B, 1 file": an upload's bytes and how many files they were. */
export function filesSize(size, files) {
  return t("upload.size", { size: formatBytes(size), n: formatNumber(files) });
}

/**
 * The task's outcome: the CID it made, the counts it holds, the first
 * errors; else its JSON. `showSize: false` leaves out an upload's size (said
 * beside it already).
 */
export function resultView(task, gateway = null, { showSize = true } = {}) {
  const result = task.result;
  if (!result || typeof result !== "object") return null;
  if (result.cid) {
    return el("div", { class: "result" },
      el("span", { class: "result-cid" }, cidView(result.cid)),
      showSize && result.size != null ? el("span", {}, filesSize(result.size, result.files || 1)) : null,
      result.dag_size ? el("span", { class: "muted" }, t("upload.storedSize", { size: formatBytes(result.dag_size) }))
        : null,
      el("span", {}, result.pinned ? t("upload.pinned") : t("upload.notPinned")),
      gatewayLink(result.cid, gateway),
      failedCount(task) ? countsView(result, ["failed"]) : null,
      errorDetailsView(task));
  }
  const counts = RESULT_COUNTS.filter((key) => typeof result[key] === "number");
  if (!counts.length) return el("pre", { class: "json" }, JSON.stringify(result, null, 2));
  const details = errorDetailsView(task);
  const invalidLines = Array.isArray(result.invalid_lines) ? result.invalid_lines : [];
  // A task that stopped before it did anything has nothing to report.
  if (task.status !== "completed" && !details && counts.every((key) => !result[key])) return null;
  return el("div", { class: "result" },
    countsView(result, counts),
    invalidLines.length ? el("p", { class: "muted invalid-lines" },
      t("result.invalidLines", { lines: invalidLines.join(", ") })) : null,
    details);
}

// ---------------------------------------------------------------------------
// Cancel and retry
// ---------------------------------------------------------------------------

/** Ask a task to stop; returns the new status or null (the reason is shown). */
export async function cancelTask(id) {
  try {
    const answer = await postJSON(`/tasks/cancel?id=${id}`);
    if (answer.status === "cancelled") toast(() => t("task.cancelled", { id }));
    else toast(() => t("task.cancelling", { id }), "info", `stopping-${id}`);
    return answer.status;
  } catch (error) {
    toast(error, "error");
    return null;
  }
}

/** Start a task again; returns the new id, or the one that already exists (409). */
export async function retryTask(id) {
  try {
    const answer = await postJSON(`/tasks/retry?id=${id}`);
    toast(() => t("task.retried", { id: answer.taskId, old: id }));
    return answer.taskId;
  } catch (error) {
    toast(error, "error");
    return error.data && error.data.taskId ? error.data.taskId : null;
  }
}

/** A button that asks an active task to stop; `after` runs once the server answered. */
export function cancelControl(task, after, id = null) {
  if (!isActive(task)) return null;
  return el("button", {
    type: "button", class: "button small", "data-action": "cancel", id, disabled: Boolean(task.cancel_requested_at),
    onclick: async () => {
      await cancelTask(task.id);
      after();
    },
  }, t("action.cancel"));
}

/**
 * "Retry" (or "Retry the 3 failed" for a partial task) while the task can
 * start again; once it has been retried, a link to its retry instead.
 */
export function retryControl(task, onRetried, { id = null, href = (taskId) => `/tasks?id=${taskId}` } = {}) {
  if (task.retried_by) {
    return el("a", { class: "task-link retried-link", href: href(task.retried_by), "data-action": "retried" },
      t("task.retriedAs", { id: task.retried_by }));
  }
  if (!canRetry(task)) return null;
  return el("button", {
    type: "button", class: "button small", "data-action": "retry", id,
    onclick: async () => {
      const newId = await retryTask(task.id);
      if (newId) onRetried(newId);
    },
  }, isPartial(task) ? t("action.retryFailed", { n: formatNumber(failedCount(task)) }) : t("action.retry"));
}

// ---------------------------------------------------------------------------
// Watching a task, and telling how it ended
// ---------------------------------------------------------------------------

/** Call with each task a page polls: a "stopping…" notice goes once the task has ended. */
export function noteTask(task) {
  if (!isActive(task)) dismissToast(`stopping-${task.id}`);
}

/**
 * Poll one task until it ends, quickly at first: `onTask(task)` after each
 * answer. Returns the poller (stop() it to look away).
 */
export function watchTask(id, onTask, onError) {
  const poller = new Poller(async () => {
    const task = await getJSON(`/pins/task-status?id=${id}`);
    if (!poller.running) return false; // stopped while the answer was on its way
    noteTask(task);
    onTask(task);
    return isActive(task);
  }, { quick: true, onError });
  poller.start();
  return poller;
}

// Desktop notifications, only after the reader opted in.
const NOTIFY_KEY = "ipfsmaster.notify";
const LONG_TASK_SECONDS = 10;

function storedOptIn() {
  try {
    return window.localStorage.getItem(NOTIFY_KEY) === "1";
  } catch (error) {
    return false;
  }
}

function storeOptIn(on) {
  try {
    if (on) window.localStorage.setItem(NOTIFY_KEY, "1");
    else window.localStorage.removeItem(NOTIFY_KEY);
  } catch (error) {
    // Storage is off (private mode): the choice lasts for this page only.
  }
}

/** Wire a checkbox to the opt-in; permission is asked only when it is ticked. */
export function setupNotifyToggle(checkbox) {
  if (!("Notification" in window)) {
    checkbox.closest("label").hidden = true;
    return;
  }
  checkbox.checked = storedOptIn() && Notification.permission === "granted";
  checkbox.addEventListener("change", async () => {
    if (!checkbox.checked) {
      storeOptIn(false);
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission === "granted") {
      storeOptIn(true);
    } else {
      checkbox.checked = false;
      storeOptIn(false);
      toast(() => t("notify.denied"), "error");
    }
  });
}

/** A desktop notification, if the reader opted in and is looking elsewhere, for a long task. */
function notifyTaskEnded(task, body) {
  if (!("Notification" in window) || !storedOptIn() || Notification.permission !== "granted") return;
  if (!document.hidden || (taskDuration(task) ?? 0) <= LONG_TASK_SECONDS) return;
  try {
    new Notification(t("app.name"), { body, tag: `task-${task.id}` });
  } catch (error) {
    // Some platforms only allow notifications from a service worker.
  }
}

/**
 * Tell the reader how a task they watched ended: "Pin add #12: Completed, 3
 * failed". A notice when something failed (it stays until dismissed), or when
 * the task took long enough for the reader to have looked elsewhere; and a
 * desktop notification. `what` names the task in the current language.
 */
export function announceTaskEnd(task, what = () => taskTypeLabel(task.task_type)) {
  const say = () => t("task.ended", { what: what(), id: task.id, outcome: statusText(task) });
  const kind = task.status === "failed" ? "error" : isPartial(task) ? "warn" : "info";
  if (kind !== "info" || (taskDuration(task) ?? 0) > LONG_TASK_SECONDS) toast(say, kind);
  notifyTaskEnded(task, say());
}

// ---------------------------------------------------------------------------
// One task in a panel of its own
// ---------------------------------------------------------------------------

/**
 * A task shown in a panel (a sync, pinning, unpinning, garbage collection,
 * recovery): its state, progress, what it is on, its result; cancel and
 * retry; how it ended, told once.
 *
 * Options: `summary(task)`, the main line (default: progress);
 * `showType`, whether the head names the task's type; `dismissable`, an ×
 * once it has ended; `idPrefix`, ids for its buttons (PREFIX-cancel,
 * PREFIX-retry); `gateway()`, where result links open; `onUpdate(task)`
 * after each poll; `onEnd(task)` once.
 */
export class TaskPanel {
  constructor(container, {
    summary = null, showType = true, dismissable = true, idPrefix = null, gateway = () => null,
    onUpdate = null, onEnd = null,
  } = {}) {
    Object.assign(this, { container, summary, showType, dismissable, idPrefix, gateway, onUpdate, onEnd });
    this.task = null;
    this.poller = null;
    this.meter = null;
  }

  watch(id, taskType = "") {
    if (this.poller) this.poller.stop();
    this.task = { id, task_type: taskType, status: "pending", progress: 0, total: 0, percentage: 0 };
    this.meter = new RateMeter();
    this.render();
    this.poller = watchTask(id, (task) => {
      this.task = task;
      this.meter.add(task);
      this.render();
      if (this.onUpdate) this.onUpdate(task);
      if (isActive(task)) return;
      announceTaskEnd(task);
      if (this.onEnd) this.onEnd(task);
    }, (error) => {
      toast(error, "error");
      this.close();
    });
  }

  close() {
    if (this.poller) this.poller.stop();
    this.task = null;
    this.render();
    if (this.onUpdate) this.onUpdate(null);
  }

  line(task) {
    if (task.status === "pending") return t("task.waiting");
    if (task.cancel_requested_at && isActive(task)) return t("task.stopping");
    return this.summary ? this.summary(task) : progressText(task);
  }

  render() {
    const task = this.task;
    const panel = this.container;
    setTitleProgress(panel.id, task && isActive(task) ? task.percentage : null);
    panel.hidden = !task;
    if (!task) {
      panel.replaceChildren();
      return;
    }
    const active = isActive(task);
    const message = taskMessage(task);
    const current = task.result && task.result.current;
    const line = this.line(task);
    const rate = rateText(task, this.meter);
    const ids = (action) => (this.idPrefix ? `${this.idPrefix}-${action}` : null);
    panel.dataset.status = task.status;
    fill(panel,
      el("div", { class: "task-head" },
        statusBadge(task),
        this.showType ? el("span", {}, taskTypeLabel(task.task_type)) : null,
        el("a", { href: `/tasks?id=${task.id}`, title: t("task.viewInConsole") }, `#${task.id}`),
        el("span", { class: "spacer" }),
        cancelControl(task, () => this.poller.wake(), ids("cancel")),
        retryControl(task, (id) => this.watch(id, task.task_type), { id: ids("retry") }),
        active || !this.dismissable ? null : dismissButton(() => this.close())),
      hasProgress(task) ? progressBar(task, taskTypeLabel(task.task_type)) : null,
      el("div", { class: "task-lines" },
        line ? el("p", { class: "task-line" }, line) : null,
        rate ? el("p", { class: "task-line muted" }, rate) : null,
        active && current && current.cid ? el("p", { class: "task-line current-item" },
          t("pinadd.current", { cid: current.cid, blocks: formatNumber(current.blocks || 0) }))
          : active ? el("p", { class: "task-line current-item" }, currentItemView(task)) : null),
      message && task.status === "failed" ? el("p", { class: "alert", role: "alert" }, message) : null,
      message && task.status === "cancelled" ? el("p", { class: "note" }, message) : null,
      active ? null : resultView(task, this.gateway()));
  }
}
