// The task console: every background task, filtered and paged, and one
// task in detail with its worker log.

import {
  $, el, errorText, fill, formatDuration, formatNumber, getJSON, getText, initPage, onLanguageChange, Poller,
  setPageTitle, setTitleProgress, t, taskTypeChoices, taskTypeLabel, timeElement, withQuery,
} from "./common.js";
import {
  cancelControl, currentItemView, hasProgress, isActive, noteTask, progressBar, progressText, RateMeter, rateText,
  resultView, retryControl, statusBadge, statusText, taskDuration, taskMessage,
} from "./taskview.js";

const PAGE_SIZE = 25;
const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
// The list polls fast while a task in it is active, and slowly otherwise, so
// that tasks started elsewhere (the command line, another tab) still appear.
const ACTIVE_POLL_MS = 2000;
const IDLE_POLL_MS = 10000;

// What the address says: the filters, the page, and the task shown in detail.
const view = { status: "", type: "", offset: 0, id: null };

function readLocation() {
  const params = new URLSearchParams(window.location.search);
  view.status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  // The server refuses a type it does not know; the filter then shows the error.
  view.type = /^[a-z_]{1,40}$/.test(params.get("type") || "") ? params.get("type") : "";
  const page = parseInt(params.get("page"), 10);
  view.offset = page > 1 ? (page - 1) * PAGE_SIZE : 0;
  const id = params.get("id");
  view.id = /^[1-9][0-9]{0,14}$/.test(id || "") ? Number(id) : null;
}

function addressFor({ id = null, status = view.status, type = view.type, offset = view.offset } = {}) {
  const page = offset / PAGE_SIZE + 1;
  return withQuery("/tasks", { id, status, type, page: page > 1 ? page : "" });
}

function navigate(address) {
  window.history.pushState(null, "", address);
  readLocation();
  show();
}

function show() {
  const inDetail = view.id !== null;
  $("#task-list").hidden = inDetail;
  $("#task-detail").hidden = !inDetail;
  if (inDetail) {
    listPoller.stop();
    openDetail(view.id);
  } else {
    closeDetail();
    setPageTitle("title.tasks");
    $("#filter-status").value = view.status;
    $("#tasks-download").href = withQuery("/api/tasks/export", { format: "csv", status: view.status, type: view.type });
    renderTypeFilter();
    renderList();
    listPoller.start();
  }
}

// ---------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------

const list = { tasks: null, total: 0, error: null };
const meters = new Map();

function meterFor(task) {
  if (!meters.has(task.id)) meters.set(task.id, new RateMeter());
  return meters.get(task.id);
}

function listAddress() {
  return withQuery("/api/tasks", { status: view.status, type: view.type, limit: PAGE_SIZE, offset: view.offset });
}

async function loadList() {
  const address = listAddress();
  const data = await getJSON(address);
  if (view.id !== null) return false;
  if (listAddress() !== address) return loadList(); // the filters changed meanwhile
  Object.assign(list, { tasks: data.tasks, total: data.total, error: null });
  for (const task of data.tasks) {
    noteTask(task);
    if (task.status === "running") meterFor(task).add(task);
    else meters.delete(task.id);
  }
  renderList();
  listPoller.interval = data.tasks.some(isActive) ? ACTIVE_POLL_MS : IDLE_POLL_MS;
  return true;
}

/** The type filter's options, from the registry of task types. */
function renderTypeFilter() {
  const select = $("#filter-type");
  fill(select, el("option", { value: "" }, t("filter.all")),
    taskTypeChoices().map(([type, label]) => el("option", { value: type }, label)));
  if (view.type && !taskTypeChoices().some(([type]) => type === view.type)) {
    select.append(el("option", { value: view.type }, view.type));
  }
  select.value = view.type;
}

const listPoller = new Poller(loadList, {
  interval: ACTIVE_POLL_MS,
  quick: true,
  onError: (error) => {
    Object.assign(list, { tasks: [], total: 0, error });
    renderList();
  },
});

/** Cancel while active; once ended, retry (or the link to its retry). */
function taskActions(task, { onRetried }) {
  return cancelControl(task, refresh)
    || retryControl(task, onRetried, { href: (id) => addressFor({ id }) });
}

function errorLine(task) {
  const message = taskMessage(task);
  return message ? el("div", { class: task.status === "failed" ? "error-text" : "muted" }, message) : null;
}

function timesView(task) {
  const line = (key, value) => (value
    ? el("div", { class: "time-line" }, el("span", { class: "muted" }, t(key)), " ", timeElement(value)) : null);
  return [line("time.created", task.created_at), line("time.started", task.started_at),
    line("time.finished", task.completed_at)];
}

function taskRow(task) {
  const rate = rateText(task, meters.get(task.id));
  const stopping = task.status === "running" && task.cancel_requested_at;
  const row = el("tr", {
    class: "clickable", "data-task-id": task.id, "data-status": task.status, "data-key": `task-${task.id}`,
    onclick: (event) => {
      if (event.target.closest("a, button")) return;
      navigate(addressFor({ id: task.id }));
    },
  },
    el("td", { "data-label": t("col.id") },
      el("a", { href: addressFor({ id: task.id }), class: "task-link" }, `#${task.id}`)),
    el("td", { class: "cell-type", "data-label": t("col.type") }, taskTypeLabel(task.task_type)),
    el("td", { "data-label": t("col.status") }, statusBadge(task),
      stopping ? el("div", { class: "muted small" }, t("task.stopping")) : null),
    el("td", { class: "cell-progress", "data-label": t("col.progress") },
      hasProgress(task) ? progressBar(task) : null,
      el("div", { class: "progress-meta" },
        el("span", {}, progressText(task)), rate ? el("span", { class: "muted" }, rate) : null),
      errorLine(task)),
    el("td", { class: "cell-times", "data-label": t("col.times") }, timesView(task)),
    el("td", { class: "num", "data-label": t("col.duration") },
      task.started_at ? formatDuration(taskDuration(task)) : el("span", { class: "muted" }, t("dash"))),
    el("td", { class: "cell-actions" }, taskActions(task, { onRetried: () => refresh() })));
  return row;
}

function renderList() {
  const tasks = list.tasks || [];
  fill($("#tasks-body"), tasks.map(taskRow));
  const empty = $("#tasks-empty");
  const text = list.error ? errorText(list.error)
    : list.tasks === null ? t("loading") : tasks.length ? "" : t("empty.tasks");
  empty.textContent = text;
  empty.hidden = !text;
  empty.classList.toggle("error-text", Boolean(list.error));
  const to = view.offset + tasks.length;
  $("#page-range").textContent = list.total ? t("pager.range", {
    from: formatNumber(view.offset + 1), to: formatNumber(to), total: formatNumber(list.total),
  }) : "";
  $("#page-prev").disabled = view.offset === 0;
  $("#page-next").disabled = to >= list.total;
}

/** Load the list now and keep it fresh while something in it is active. */
function refresh() {
  if (view.id === null) listPoller.start();
  else detailPoller?.wake();
}

function setupList() {
  const onFilter = () => navigate(addressFor({
    status: $("#filter-status").value, type: $("#filter-type").value, offset: 0,
  }));
  $("#filter-status").addEventListener("change", onFilter);
  $("#filter-type").addEventListener("change", onFilter);
  $("#refresh").addEventListener("click", refresh);
  $("#page-prev").addEventListener("click", () => navigate(addressFor({
    offset: Math.max(0, view.offset - PAGE_SIZE),
  })));
  $("#page-next").addEventListener("click", () => navigate(addressFor({ offset: view.offset + PAGE_SIZE })));
  $("#tasks-body").addEventListener("click", (event) => {
    const link = event.target.closest("a.task-link");
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      navigate(link.getAttribute("href"));
    }
  });
}

// ---------------------------------------------------------------------------
// One task in detail
// ---------------------------------------------------------------------------

const detail = { id: null, task: null, log: "", error: null, meter: null };
let detailPoller = null;

function openDetail(id) {
  closeDetail();
  Object.assign(detail, { id, task: null, log: "", error: null, meter: new RateMeter() });
  setPageTitle("title.task", { id });
  renderDetail();
  const poller = new Poller(async () => {
    const task = await getJSON(`/pins/task-status?id=${id}`);
    const log = await getText(`/tasks/log?id=${id}`);
    if (poller !== detailPoller) return false;
    noteTask(task);
    detail.task = task;
    detail.log = log;
    detail.meter.add(task);
    renderDetail();
    return isActive(task);
  }, {
    quick: true,
    onError: (error) => {
      detail.error = error;
      renderDetail();
    },
  });
  detailPoller = poller;
  poller.start();
}

function closeDetail() {
  if (detailPoller) detailPoller.stop();
  detailPoller = null;
  setTitleProgress("detail", null);
}

function field(key, value) {
  if (value == null || value === "") return null;
  return el("div", { class: "field-row" }, el("dt", {}, t(key)), el("dd", {}, value));
}

function renderDetail() {
  const task = detail.task;
  $("#detail-back").setAttribute("href", addressFor());
  $("#detail-heading").textContent = t("detail.heading", { id: detail.id });
  fill($("#detail-badge"), task ? statusBadge(task) : null);
  fill($("#detail-actions"), task ? taskActions(task, { onRetried: (id) => navigate(addressFor({ id })) }) : null);
  setTitleProgress("detail", task && isActive(task) ? task.percentage : null);

  const body = $("#detail-body");
  // A task that cannot be read has no log to show either.
  $("#detail-log-section").hidden = Boolean(detail.error);
  if (detail.error) {
    const missing = detail.error.status === 404;
    fill(body, el("p", { class: "alert", role: "alert", id: missing ? "detail-missing" : null },
      missing ? t("detail.missing", { id: detail.id }) : errorText(detail.error)));
    return;
  }
  if (!task) {
    fill(body, el("p", { class: "muted" }, t("loading")));
    return;
  }
  const rate = rateText(task, detail.meter);
  const item = isActive(task) ? currentItemView(task) : null;
  const message = taskMessage(task);
  fill(body,
    hasProgress(task) ? progressBar(task) : null,
    el("div", { class: "progress-meta" },
      el("span", {}, progressText(task)), rate ? el("span", { class: "muted" }, rate) : null),
    message ? el("p", task.status === "failed" ? { class: "alert", role: "alert" } : { class: "note" }, message) : null,
    el("dl", { class: "fields" },
      field("field.type", taskTypeLabel(task.task_type)),
      field("field.status", statusText(task)),
      field("field.currentItem", item),
      field("field.created", timeElement(task.created_at)),
      field("field.started", task.started_at ? timeElement(task.started_at) : null),
      field("field.finished", task.completed_at ? timeElement(task.completed_at) : null),
      field("field.duration", task.started_at ? formatDuration(taskDuration(task)) : null),
      field("field.heartbeat", task.heartbeat_at ? timeElement(task.heartbeat_at) : null),
      field("field.cancelRequested", task.cancel_requested_at ? timeElement(task.cancel_requested_at) : null),
      field("field.pid", task.pid ? String(task.pid) : null),
      field("field.retryOf", task.retry_of
        ? el("a", { href: addressFor({ id: task.retry_of }), class: "task-link" }, `#${task.retry_of}`) : null),
      field("field.retriedBy", task.retried_by
        ? el("a", { href: addressFor({ id: task.retried_by }), class: "task-link" }, `#${task.retried_by}`) : null)),
    task.result ? el("h2", {}, t("field.result")) : null,
    task.result ? resultView(task) : null,
    task.result ? el("details", { class: "raw" }, el("summary", {}, t("field.resultRaw")),
      el("pre", { class: "json" }, JSON.stringify(task.result, null, 2))) : null,
    el("h2", {}, t("field.params")),
    el("pre", { class: "json" }, JSON.stringify(task.params || {}, null, 2)));

  // Only a log that changed is written again: the reader's selection in it stays.
  const log = $("#detail-log");
  const text = detail.log || t("log.empty");
  if (log.textContent !== text) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = text;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
  log.classList.toggle("muted", !detail.log);
}

function setupDetail() {
  $("#task-detail").addEventListener("click", (event) => {
    const link = event.target.closest("a.task-link, #detail-back");
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      navigate(link.getAttribute("href"));
    }
  });
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

initPage("title.tasks");
readLocation();
setupList();
setupDetail();
onLanguageChange(() => {
  renderTypeFilter();
  if (view.id === null) renderList();
  else renderDetail();
});
window.addEventListener("popstate", () => {
  readLocation();
  show();
});
show();
