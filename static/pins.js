// The pins page: the node, the catalogue, the pin sync, pinning and
// unpinning, garbage collection and file uploads.

import { peerCount } from "./peers.js";
import {
  $, ApiError, cancelTask, canRetry, cidView, currentItemView, dismissButton, el, fill, formatAgo, formatBytes,
  formatDuration, formatNumber, formatTime, gatewayLink, getJSON, hasProgress, initPage, isActive, loadSiteInfo,
  noteTask, notifyTaskEnded, onLanguageChange, Poller, postJSON, progressBar, progressText, RateMeter, rateText,
  resultView, retryTask, setTitleProgress, setupNotifyToggle, statusBadge, t, taskDuration, taskMessage,
  taskTypeLabel, timeElement, toast, translateTaskMessage, withQuery,
} from "./common.js";

const PAGE_SIZE = 50;
const SORTS = ["name", "-name", "size", "-size", "synced", "-synced", "cid", "-cid"];
// A first click sorts names and CIDs A to Z, sizes and times largest or newest first.
const FIRST_DIRECTION = { cid: "cid", name: "name", size: "-size", synced: "-synced" };
const SEARCH_DELAY_MS = 300;
const FILTERS = ["error", "under-replicated"];
const TABLE_REFRESH_MS = 3000;
const NODE_REFRESH_MS = 5000;

// ---------------------------------------------------------------------------
// The node: its overview, its gateway, garbage collection
// ---------------------------------------------------------------------------

const node = { data: null, error: null, gateway: null };

/** The gateway that links open: the node's own, or the one the console was given. */
function gateway() {
  return (node.data && node.data.gateway) || node.gateway;
}

async function loadNode() {
  try {
    node.data = await getJSON("/api/node");
    node.error = null;
  } catch (error) {
    // The reason alone (a worker-style sentence, translated here); the page says the rest.
    node.error = error instanceof ApiError && error.data.reason ? error.data.reason : error.message;
  }
  renderNode();
  renderPins();
  for (const upload of uploads) renderUpload(upload);
  return true;
}

function renderNode() {
  const data = node.data;
  const overview = $("#node-overview");
  if (node.error) {
    fill(overview, el("p", { class: "alert", role: "alert", id: "node-error" },
      t("node.unreachable", { error: translateTaskMessage(node.error) })));
    return;
  }
  if (!data) {
    fill(overview, el("p", { class: "muted" }, t("loading")));
    return;
  }
  const item = (key, id, ...value) => el("div", { class: "node-item" }, el("dt", {}, t(key)), el("dd", { id }, ...value));
  const used = data.storage_max ? Math.min(1, data.repo_size / data.storage_max) : 0;
  const bar = el("div", {
    class: "progress repo-bar", role: "progressbar", "aria-label": t("node.repo"), "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": String(Math.round(used * 100)), "data-status": "running",
  }, el("div", { class: "progress-fill", "data-width": String(used) }));
  bar.firstChild.style.width = `${(used * 100).toFixed(2)}%`;
  fill(overview, el("dl", { class: "node-overview" },
    item("node.id", "node-id", data.id ? el("code", { title: data.id }, data.id) : t("dash")),
    item("node.version", "node-version", data.agent_version || t("dash")),
    item("node.repo", "node-repo",
      data.storage_max ? t("node.repoValue", { size: formatBytes(data.repo_size), max: formatBytes(data.storage_max) })
        : formatBytes(data.repo_size), data.storage_max ? bar : null),
    item("node.objects", "node-objects", data.num_objects == null ? t("dash") : formatNumber(data.num_objects)),
    item("node.peers", "node-peers", peerCount(data.peers || 0)),
    item("node.gateway", "node-gateway", gateway() ? el("a", {
      href: gateway(), target: "_blank", rel: "noopener noreferrer",
    }, gateway()) : t("dash"))));
}

/**
 * A task shown in a panel of its own (pinning, unpinning, garbage
 * collection): progress, what it is on, its result; cancel and retry.
 */
class TaskPanel {
  constructor(container, { onEnd = null } = {}) {
    this.container = container;
    this.onEnd = onEnd;
    this.task = null;
    this.poller = null;
    this.meter = null;
  }

  watch(id) {
    if (this.poller) this.poller.stop();
    this.task = { id, task_type: "", status: "pending", progress: 0, total: 0, percentage: 0 };
    this.meter = new RateMeter();
    const poller = new Poller(async () => {
      const task = await getJSON(`/pins/task-status?id=${id}`);
      if (poller !== this.poller) return false;
      this.task = task;
      this.meter.add(task);
      noteTask(task);
      this.render();
      if (isActive(task)) return true;
      if (this.onEnd) this.onEnd(task);
      notifyTaskEnded(task, `${taskTypeLabel(task.task_type)}: ${t(`status.${task.status}`)}`);
      return false;
    }, { onError: (error) => toast(error.message, "error") });
    this.poller = poller;
    this.render();
    poller.start();
  }

  render() {
    const task = this.task;
    const panel = this.container;
    panel.hidden = !task;
    if (!task) return;
    const active = isActive(task);
    const message = taskMessage(task);
    const current = task.result && task.result.current;
    const rate = rateText(task, this.meter);
    panel.dataset.status = task.status;
    fill(panel,
      el("div", { class: "task-head" },
        statusBadge(task.status),
        el("span", {}, taskTypeLabel(task.task_type)),
        el("a", { href: `/tasks?id=${task.id}`, title: t("task.viewInConsole") }, `#${task.id}`),
        el("span", { class: "spacer" }),
        active ? el("button", {
          type: "button", class: "button small", "data-action": "cancel", disabled: Boolean(task.cancel_requested_at),
          onclick: async () => {
            await cancelTask(task.id);
            this.poller.wake();
          },
        }, t("action.cancel")) : null,
        canRetry(task) ? el("button", {
          type: "button", class: "button small", "data-action": "retry",
          onclick: async () => {
            const id = await retryTask(task.id);
            if (id) this.watch(id);
          },
        }, t("action.retry")) : null,
        active ? null : dismissButton(() => {
          this.task = null;
          this.render();
        })),
      hasProgress(task) ? progressBar(task, taskTypeLabel(task.task_type)) : null,
      el("div", { class: "task-lines" },
        el("p", { class: "task-line" }, task.status === "pending" ? t("task.waiting")
          : task.cancel_requested_at && active ? t("task.stopping") : progressText(task)),
        rate ? el("p", { class: "task-line muted" }, rate) : null,
        active && current && current.cid ? el("p", { class: "task-line current-item" },
          t("pinadd.current", { cid: current.cid, blocks: formatNumber(current.blocks || 0) }))
          : active ? el("p", { class: "task-line current-item" }, currentItemView(task)) : null),
      message && task.status === "failed" ? el("p", { class: "alert", role: "alert" }, message) : null,
      message && task.status === "cancelled" ? el("p", { class: "note" }, message) : null,
      active ? null : resultView(task, gateway()));
  }
}

const gcPanel = new TaskPanel(document.getElementById("gc-task"), { onEnd: () => loadNode() });

async function startGc() {
  $("#gc-button").disabled = true;
  try {
    const answer = await postJSON("/node/gc");
    toast(t("node.gcStarted", { id: answer.taskId }));
    gcPanel.watch(answer.taskId);
  } catch (error) {
    toast(error.message, "error");
  } finally {
    $("#gc-button").disabled = false;
  }
}

// ---------------------------------------------------------------------------
// The catalogue: summary, search, sort and pages
// ---------------------------------------------------------------------------

const catalogue = {
  q: "",
  status: "",
  sort: "-synced",
  offset: 0,
  pins: null,
  total: 0,
  summary: null,
  error: null,
};
let catalogueRequest = 0;

function readLocation() {
  const params = new URLSearchParams(window.location.search);
  catalogue.q = (params.get("q") || "").trim();
  catalogue.status = FILTERS.includes(params.get("status")) ? params.get("status") : "";
  catalogue.sort = SORTS.includes(params.get("sort")) ? params.get("sort") : "-synced";
  const page = parseInt(params.get("page"), 10);
  catalogue.offset = page > 1 ? (page - 1) * PAGE_SIZE : 0;
}

function writeLocation() {
  const page = catalogue.offset / PAGE_SIZE + 1;
  const url = withQuery(window.location.pathname, {
    q: catalogue.q,
    status: catalogue.status,
    sort: catalogue.sort === "-synced" ? "" : catalogue.sort,
    page: page > 1 ? page : "",
  });
  window.history.replaceState(null, "", url);
  clearSelection();
}

async function loadPins() {
  const request = ++catalogueRequest;
  const url = withQuery("/api/pins", {
    q: catalogue.q, status: catalogue.status, sort: catalogue.sort, limit: PAGE_SIZE, offset: catalogue.offset,
  });
  try {
    const data = await getJSON(url);
    if (request !== catalogueRequest) return;
    if (!data.pins.length && catalogue.offset > 0 && data.total > 0) {
      // The page emptied (a sync removed pins): go to the last page there is.
      catalogue.offset = Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      writeLocation();
      loadPins();
      return;
    }
    Object.assign(catalogue, { pins: data.pins, total: data.total, summary: data.summary, error: null });
  } catch (error) {
    if (request !== catalogueRequest) return;
    catalogue.error = error.message;
  }
  renderSummary();
  renderPins();
}

function renderSummary() {
  const summary = catalogue.summary;
  if (!summary) return;
  $("#stat-count").textContent = formatNumber(summary.count);
  $("#stat-size").textContent = formatBytes(summary.total_size);
  $("#stat-unsized").textContent = formatNumber(summary.unsized);
  const last = summary.last_sync;
  $("#stat-last-sync").replaceChildren(last
    ? el("a", { href: `/tasks?id=${last.id}`, title: formatTime(last.completed_at) },
      t("summary.lastSyncValue", { id: last.id, ago: formatAgo(last.completed_at) }))
    : t("summary.never"));
  renderCluster(summary.cluster);
}

// ---------------------------------------------------------------------------
// IPFS Cluster: its peers, the pins in error, recovery
// ---------------------------------------------------------------------------

const recoverPanel = new TaskPanel(document.getElementById("recover-task"), { onEnd: () => loadPins() });

/** The cluster card and filter, shown while the catalogue is a cluster's. Everything the cluster says is text. */
function renderCluster(cluster) {
  $("#cluster-card").hidden = !cluster;
  $("#pin-filter").hidden = !cluster && !catalogue.status;
  $("#col-replication").hidden = !cluster;
  if (!cluster) return;
  $("#cluster-counts").textContent = t("cluster.counts", {
    peers: formatNumber(cluster.peers.length), errors: formatNumber(cluster.pins_in_error),
    under: formatNumber(cluster.under_replicated),
  });
  fill($("#cluster-peers"), cluster.peers.map((peer) => el("li", { "data-key": `peer-${peer.id}` },
    el("span", { class: peer.error ? "badge badge-failed" : "badge badge-completed" }, peer.error ? t("cluster.peerError")
      : t("cluster.peerOk")),
    " ", el("strong", {}, peer.name || peer.id), " ", el("code", { class: "muted", title: peer.id }, peer.id),
    peer.version ? el("span", { class: "muted" }, ` · ${peer.version}`) : null,
    peer.error ? el("span", { class: "error-text" }, ` · ${peer.error}`) : null)));
  $("#recover-button").disabled = !cluster.pins_in_error;
}

async function startRecovery() {
  $("#recover-button").disabled = true;
  try {
    const answer = await postJSON("/pins/recover");
    toast(t("cluster.recoverStarted", { id: answer.taskId }));
    recoverPanel.watch(answer.taskId);
  } catch (error) {
    toast(error.message, "error");
    $("#recover-button").disabled = false;
  }
}

/** A pin's replication across the cluster: pinned of wanted peers, the other states, each failing peer's sentence. */
function replicationView(pin) {
  const peers = pin.peers || {};
  const pinned = peers.pinned || 0;
  const wanted = pin.replication_wanted || 0;
  const states = ["pinning", "queued", "error", "unpinning"].filter((state) => peers[state])
    .map((state) => t(`cluster.state.${state}`, { n: peers[state] }));
  return el("div", { class: "replication" },
    el("span", { class: pinned >= wanted && !peers.error ? "badge badge-completed" : "badge badge-failed" },
      t("cluster.pinned", { pinned, wanted })),
    states.length ? el("span", { class: "muted" }, ` ${states.join(" · ")}`) : null,
    (pin.peer_errors || []).map((error) => el("div", { class: "error-text peer-error" },
      `${error.peer || ""}: ${error.error || error.status}`)));
}

function pinRow(pin) {
  const typeKey = `pinType.${pin.type}`;
  const typeLabel = t(typeKey) === typeKey ? pin.type : t(typeKey);
  return el("tr", { "data-key": `pin-${pin.cid}`, "data-cid": pin.cid },
    el("td", { class: "cell-select", "data-label": t("col.select") }, el("input", {
      type: "checkbox", class: "pin-select", checked: selection.has(pin.cid),
      "aria-label": t("unpin.select", { cid: pin.cid }),
      onchange: (event) => {
        if (event.target.checked) selection.add(pin.cid);
        else selection.delete(pin.cid);
        renderSelection();
      },
    })),
    el("td", { class: "cell-cid", "data-label": t("col.cid") }, cidView(pin.cid)),
    el("td", { "data-label": t("col.type") }, typeLabel),
    el("td", { class: "cell-name", "data-label": t("col.name") },
      pin.name ? el("span", { title: pin.name }, pin.name) : el("span", { class: "muted" }, t("dash"))),
    el("td", { class: "num", "data-label": t("col.size") },
      pin.size == null
        ? el("span", { class: "muted" }, t("dash"))
        : el("span", { title: `${formatNumber(pin.size)} B` }, formatBytes(pin.size))),
    el("td", { "data-label": t("col.synced") }, timeElement(pin.synced_at)),
    catalogue.summary && catalogue.summary.cluster
      ? el("td", { class: "cell-replication", "data-label": t("col.replication") }, replicationView(pin)) : null,
    el("td", { "data-label": t("col.gateway") }, gatewayLink(pin.cid, gateway()) || el("span", { class: "muted" },
      t("dash"))));
}

// ---------------------------------------------------------------------------
// Selecting pins and unpinning them
// ---------------------------------------------------------------------------

const selection = new Set();
const unpinPanel = new TaskPanel(document.getElementById("unpin-task"), { onEnd: () => loadPins() });

function renderSelection() {
  const button = $("#unpin-button");
  button.textContent = t("unpin.button", { n: formatNumber(selection.size) });
  button.disabled = selection.size === 0;
  const onPage = (catalogue.pins || []).map((pin) => pin.cid);
  const all = $("#select-all");
  const chosen = onPage.filter((cid) => selection.has(cid)).length;
  all.checked = onPage.length > 0 && chosen === onPage.length;
  all.indeterminate = chosen > 0 && chosen < onPage.length;
  all.disabled = onPage.length === 0;
  for (const box of document.querySelectorAll("#pins-body .pin-select")) {
    box.checked = selection.has(box.closest("tr").dataset.cid);
  }
  if (!selection.size) $("#unpin-confirm").hidden = true;
  $("#unpin-question").textContent = t("unpin.confirm", { n: formatNumber(selection.size) });
}

/** What was selected is forgotten when the page shows other pins. */
function clearSelection() {
  selection.clear();
  renderSelection();
}

async function unpinSelected() {
  const cids = [...selection];
  $("#unpin-confirm").hidden = true;
  try {
    const answer = await postJSON("/pins/remove", { cids });
    toast(t("unpin.started", { n: formatNumber(cids.length), id: answer.taskId }));
    clearSelection();
    unpinPanel.watch(answer.taskId);
  } catch (error) {
    toast(error.message, "error");
  }
}

function setupSelection() {
  $("#select-all").addEventListener("change", (event) => {
    for (const pin of catalogue.pins || []) {
      if (event.target.checked) selection.add(pin.cid);
      else selection.delete(pin.cid);
    }
    renderSelection();
  });
  $("#unpin-button").addEventListener("click", () => {
    $("#unpin-confirm").hidden = false;
    $("#unpin-no").focus();
  });
  $("#unpin-no").addEventListener("click", () => {
    $("#unpin-confirm").hidden = true;
  });
  $("#unpin-yes").addEventListener("click", unpinSelected);
}

// ---------------------------------------------------------------------------
// Pinning CIDs
// ---------------------------------------------------------------------------

const pinPanel = new TaskPanel(document.getElementById("pin-task"), { onEnd: () => loadPins() });

function setupPinForm() {
  const form = $("#pin-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("#pin-cids").value;
    const file = $("#pin-file").files[0];
    const name = $("#pin-name").value.trim();
    const timeout = $("#pin-timeout").value.trim();
    const factors = {
      replication_min: $("#pin-replication-min").value.trim(), replication_max: $("#pin-replication-max").value.trim(),
    };
    let body;
    if (file) {
      body = new FormData();
      if (name) body.append("name", name);
      if (timeout) body.append("timeout_s", timeout);
      for (const [key, value] of Object.entries(factors)) if (value) body.append(key, value);
      body.append("file", file, file.name);
    } else if (text.trim()) {
      body = { cids: text.split(/\r?\n/), name: name || undefined, timeout_s: timeout ? Number(timeout) : undefined };
      for (const [key, value] of Object.entries(factors)) if (value) body[key] = Number(value);
    } else {
      toast(t("pinadd.needInput"), "error");
      return;
    }
    $("#pin-submit").disabled = true;
    try {
      const answer = await postJSON("/pins/add", body);
      toast(t("pinadd.started", { n: formatNumber(answer.valid), id: answer.taskId }));
      if (answer.invalid) {
        toast(t("pinadd.skipped", { n: formatNumber(answer.invalid), lines: answer.invalid_lines.join(", ") }));
      }
      form.reset();
      pinPanel.watch(answer.taskId);
    } catch (error) {
      toast(error.message, "error");
    } finally {
      $("#pin-submit").disabled = false;
    }
  });
}

function renderPins() {
  const body = $("#pins-body");
  const empty = $("#pins-empty");
  const pins = catalogue.pins || [];
  fill(body, pins.map(pinRow));
  renderSelection();

  let emptyText = "";
  if (catalogue.error) emptyText = catalogue.error;
  else if (!catalogue.pins) emptyText = t("loading");
  else if (!pins.length) emptyText = catalogue.q ? t("empty.search", { q: catalogue.q }) : t("empty.pins");
  empty.textContent = emptyText;
  empty.hidden = !emptyText;
  empty.classList.toggle("error-text", Boolean(catalogue.error));

  for (const th of document.querySelectorAll("th[data-sort]")) {
    const key = th.dataset.sort;
    const direction = catalogue.sort === key ? "ascending" : catalogue.sort === `-${key}` ? "descending" : null;
    if (direction) th.setAttribute("aria-sort", direction);
    else th.removeAttribute("aria-sort");
    $(".sort-mark", th).textContent = direction === "ascending" ? "▲" : direction === "descending" ? "▼" : "";
    $("button", th).title = t("sort.by", { col: t(`col.${key}`) });
  }

  const from = catalogue.total ? catalogue.offset + 1 : 0;
  const to = catalogue.offset + pins.length;
  $("#page-range").textContent = catalogue.total
    ? t("pager.range", { from: formatNumber(from), to: formatNumber(to), total: formatNumber(catalogue.total) })
    : "";
  $("#page-prev").disabled = catalogue.offset === 0;
  $("#page-next").disabled = to >= catalogue.total;
}

function setupCatalogue() {
  const filter = $("#pin-filter");
  filter.value = catalogue.status;
  filter.addEventListener("change", () => {
    catalogue.status = filter.value;
    catalogue.offset = 0;
    writeLocation();
    loadPins();
  });
  let searchTimer = null;
  const search = $("#pin-search");
  search.value = catalogue.q;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const q = search.value.trim();
      if (q === catalogue.q) return;
      catalogue.q = q;
      catalogue.offset = 0;
      writeLocation();
      loadPins();
    }, SEARCH_DELAY_MS);
  });

  for (const th of document.querySelectorAll("th[data-sort]")) {
    $("button", th).addEventListener("click", () => {
      const key = th.dataset.sort;
      if (catalogue.sort === key) catalogue.sort = `-${key}`;
      else if (catalogue.sort === `-${key}`) catalogue.sort = key;
      else catalogue.sort = FIRST_DIRECTION[key];
      catalogue.offset = 0;
      writeLocation();
      loadPins();
    });
  }

  $("#page-prev").addEventListener("click", () => {
    catalogue.offset = Math.max(0, catalogue.offset - PAGE_SIZE);
    writeLocation();
    loadPins();
  });
  $("#page-next").addEventListener("click", () => {
    catalogue.offset += PAGE_SIZE;
    writeLocation();
    loadPins();
  });
}

// ---------------------------------------------------------------------------
// The pin sync
// ---------------------------------------------------------------------------

const sync = { task: null, poller: null, meter: null };

function watchSync(id) {
  if (sync.poller) sync.poller.stop();
  sync.task = { id, task_type: "pin_sync", status: "pending", progress: 0, total: 0, percentage: 0 };
  sync.meter = new RateMeter();
  let refreshedAt = Date.now();
  let refreshedProgress = 0;
  sync.poller = new Poller(async () => {
    const task = await getJSON(`/pins/task-status?id=${id}`);
    sync.task = task;
    sync.meter.add(task);
    renderSync();
    if (isActive(task)) {
      // Let the table fill while the sync writes, without reloading it every second.
      if (task.progress !== refreshedProgress && Date.now() - refreshedAt >= TABLE_REFRESH_MS) {
        refreshedAt = Date.now();
        refreshedProgress = task.progress;
        loadPins();
      }
      return true;
    }
    loadPins();
    notifyTaskEnded(task, t("notify.sync", { status: t(`status.${task.status}`) }));
    return false;
  }, {
    onError: (error) => {
      sync.task = null;
      renderSync();
      toast(error.message, "error");
    },
  });
  renderSync();
  sync.poller.start();
}

async function startSync() {
  $("#sync-button").disabled = true;
  try {
    const answer = await postJSON("/pins/sync");
    watchSync(answer.taskId);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.data.taskId) {
      toast(t("sync.attached"));
      watchSync(error.data.taskId);
    } else {
      toast(error.message, "error");
      renderSync();
    }
  }
}

/** On arrival, follow a sync that is already under way. */
async function followActiveSync() {
  try {
    for (const status of ["running", "pending"]) {
      const data = await getJSON(withQuery("/api/tasks", { type: "pin_sync", status, limit: 1 }));
      if (data.tasks.length) {
        if (!sync.task) watchSync(data.tasks[0].id);
        return;
      }
    }
  } catch (error) {
    toast(error.message, "error");
  }
}

function syncSummaryLine(task) {
  if (task.status === "pending") return t("task.waiting");
  if (task.status === "running") {
    if (task.cancel_requested_at) return t("task.stopping");
    if (!task.total) return null;
    return t("sync.progress", {
      progress: formatNumber(task.progress), total: formatNumber(task.total), pct: task.percentage,
    });
  }
  if (task.status === "completed") {
    const reported = task.result && task.result.duration_s;
    const seconds = typeof reported === "number" ? reported : taskDuration(task);
    return t("sync.completed", { duration: formatDuration(seconds) });
  }
  return t(task.status === "failed" ? "sync.failed" : "sync.cancelled");
}

function renderSync() {
  const task = sync.task;
  const panel = $("#sync-task");
  $("#sync-button").disabled = Boolean(task && isActive(task));
  setTitleProgress("sync", task && isActive(task) ? task.percentage : null);
  panel.hidden = !task;
  if (!task) {
    panel.replaceChildren();
    return;
  }
  const active = isActive(task);
  const line = syncSummaryLine(task);
  const rate = rateText(task, sync.meter);
  const item = active ? currentItemView(task) : null;
  const message = taskMessage(task);
  panel.dataset.status = task.status;
  fill(panel,
    el("div", { class: "task-head" },
      statusBadge(task.status),
      el("a", { href: `/tasks?id=${task.id}`, title: t("task.viewInConsole") }, `#${task.id}`),
      el("span", { class: "spacer" }),
      active ? el("button", {
        type: "button", class: "button small", id: "sync-cancel", disabled: Boolean(task.cancel_requested_at),
        onclick: async () => {
          await cancelTask(task.id);
          sync.poller.wake();
        },
      }, t("action.cancel")) : null,
      canRetry(task) ? el("button", {
        type: "button", class: "button small", id: "sync-retry",
        onclick: async () => {
          const id = await retryTask(task.id);
          if (id) watchSync(id);
        },
      }, t("action.retry")) : null),
    hasProgress(task) ? progressBar(task, t("sync.heading")) : null,
    el("div", { class: "task-lines" },
      line ? el("p", { class: "task-line" }, line) : null,
      rate ? el("p", { class: "task-line muted" }, rate) : null,
      item ? el("p", { class: "task-line current-item" }, item) : null),
    message && task.status === "failed" ? el("p", { class: "alert", role: "alert" }, message) : null,
    message && task.status === "cancelled" ? el("p", { class: "note" }, message) : null,
    active ? null : resultView(task));
}

// ---------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------

const uploads = [];
let uploadCount = 0;

/** The files chosen: a folder's, or those of the file picker (or dropped). */
function chosenFiles() {
  const folder = [...$("#upload-folder").files];
  return folder.length ? folder : [...$("#upload-file").files];
}

/** The name of what several files become: their folder's, or "3 files · 12 KiB". */
function directoryName(files) {
  const tops = new Set(files.map((file) => (file.webkitRelativePath || "").split("/")[0]));
  return tops.size === 1 && !tops.has("") ? [...tops][0] : null;
}

function renderChosen() {
  const files = chosenFiles();
  const size = files.reduce((sum, file) => sum + file.size, 0);
  $("#upload-chosen").textContent = !files.length ? t("upload.none")
    : files.length === 1 ? `${files[0].name} · ${formatBytes(size)}`
      : t("upload.chosen", { n: formatNumber(files.length), size: formatBytes(size) });
}

/**
 * Send one file, or several as one directory (a folder keeps its paths);
 * `limit` is the server's largest upload in bytes (null while unknown).
 */
function startUpload(files, name, pin, limit) {
  const size = files.reduce((sum, file) => sum + file.size, 0);
  const shownName = name || (files.length === 1 && !files[0].webkitRelativePath ? files[0].name
    : directoryName(files) || t("upload.chosen", { n: formatNumber(files.length), size: formatBytes(size) }));
  const upload = {
    key: `upload-${++uploadCount}`, files, size, name: shownName, phase: "sending", sent: 0,
    task: null, error: null, xhr: null, poller: null, meter: new RateMeter(), row: el("li", { class: "upload" }),
  };
  uploads.unshift(upload);
  $("#upload-list").prepend(upload.row);
  if (limit != null && size > limit) {
    // Refused here: the server would only say so after the whole set had been sent.
    failUpload(upload, () => t("upload.tooLarge", { name: shownName, limit: formatBytes(limit) }));
    return;
  }

  const form = new FormData();
  // The small fields first, so a streaming reader has them before the files.
  form.append("name", name);
  form.append("pin", pin ? "1" : "0");
  for (const file of files) form.append("file", file, file.webkitRelativePath || file.name);
  const xhr = new XMLHttpRequest();
  upload.xhr = xhr;
  xhr.open("POST", "/files/upload");
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    upload.sent = event.loaded / event.total;
    renderUpload(upload);
  });
  xhr.addEventListener("load", () => {
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch (error) {
      body = null;
    }
    if (xhr.status === 202 && body && body.taskId) {
      watchUpload(upload, body.taskId);
    } else {
      failUpload(upload, (body && body.error) || (() => t("error.http", { status: xhr.status })));
    }
  });
  xhr.addEventListener("error", () => failUpload(upload, () => t("error.network")));
  xhr.addEventListener("abort", () => failUpload(upload, () => t("upload.aborted")));
  xhr.send(form);
  renderUpload(upload);
}

/** `message`: the server's sentence, or a function that says it in the current language. */
function failUpload(upload, message) {
  upload.phase = "failed";
  upload.error = message;
  renderUpload(upload);
}

function watchUpload(upload, id) {
  upload.phase = "task";
  upload.task = { id, task_type: "file_upload", status: "pending", progress: 0, total: 0, percentage: 0 };
  upload.poller = new Poller(async () => {
    const task = await getJSON(`/pins/task-status?id=${id}`);
    upload.task = task;
    upload.meter.add(task);
    noteTask(task);
    renderUpload(upload);
    if (isActive(task)) return true;
    if (task.status === "completed") loadPins();
    notifyTaskEnded(task, t("notify.upload", { name: upload.name, status: t(`status.${task.status}`) }));
    return false;
  }, { onError: (error) => failUpload(upload, error.message) });
  renderUpload(upload);
  upload.poller.start();
}

function uploadStatus(upload) {
  const task = upload.task;
  if (upload.phase === "failed") {
    return el("p", { class: "alert", role: "alert" },
      typeof upload.error === "function" ? upload.error() : upload.error);
  }
  if (upload.phase === "sending") return el("p", {}, t("upload.sending", { pct: Math.floor(upload.sent * 100) }));
  if (task.status === "pending") return el("p", {}, t("upload.queued"));
  if (task.status === "running") {
    const rate = rateText(task, upload.meter);
    return el("p", {}, t("upload.adding", { pct: task.percentage }),
      rate ? el("span", { class: "muted" }, ` · ${rate}`) : null);
  }
  if (task.status === "completed") {
    return el("div", { class: "result" }, el("span", {}, statusBadge("completed")), resultView(task, gateway()));
  }
  const message = taskMessage(task) || t(`status.${task.status}`);
  return task.status === "failed"
    ? el("p", { class: "alert", role: "alert" }, message)
    : el("p", { class: "note" }, message);
}

function renderUpload(upload) {
  const task = upload.task;
  const sending = upload.phase === "sending";
  const active = sending || Boolean(task && isActive(task));
  const sentPercentage = Math.floor(upload.sent * 100);
  setTitleProgress(upload.key, !active ? null : sending ? sentPercentage : task.percentage);
  // Until the server has the whole file, the bar shows the browser's own transfer.
  const barTask = task || {
    task_type: "file_upload", status: upload.phase === "failed" ? "failed" : "running",
    progress: upload.sent, total: 1, percentage: sentPercentage,
  };
  const stop = async () => {
    if (sending) upload.xhr.abort();
    else if (task && isActive(task)) {
      await cancelTask(task.id);
      upload.poller.wake();
    }
  };
  const dismiss = () => {
    uploads.splice(uploads.indexOf(upload), 1);
    upload.row.remove();
  };
  // No bar for a file refused before any of it was sent.
  const bar = sending || (task ? hasProgress(task) : upload.sent > 0) ? progressBar(barTask, upload.name) : null;
  if (sending) bar.classList.add("sending");
  fill(upload.row,
    el("div", { class: "upload-head" },
      el("span", { class: "upload-name", title: upload.name }, upload.name),
      el("span", { class: "muted" }, t("upload.fileBytes", { size: formatBytes(upload.size) })),
      task ? el("a", { href: `/tasks?id=${task.id}`, title: t("task.viewInConsole") }, `#${task.id}`) : null,
      el("span", { class: "spacer" }),
      active
        ? el("button", { type: "button", class: "button small", onclick: stop }, t("action.cancel"))
        : dismissButton(dismiss)),
    bar,
    uploadStatus(upload));
}

function setupUploads() {
  const input = $("#upload-file");
  const folder = $("#upload-folder");
  const zone = $("#dropzone");
  const form = $("#upload-form");
  input.addEventListener("change", () => {
    folder.value = "";
    renderChosen();
  });
  folder.addEventListener("change", () => {
    input.value = "";
    renderChosen();
  });

  // A file dropped beside the zone would otherwise replace the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      folder.value = "";
      renderChosen();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = chosenFiles();
    if (!files.length) {
      toast(t("upload.needFile"), "error");
      return;
    }
    const name = $("#upload-name").value.trim();
    const pin = $("#upload-pin").checked;
    form.reset();
    folder.value = "";
    $("#upload-pin").checked = pin;
    renderChosen();
    const { max_upload_bytes: limit } = await loadSiteInfo();
    startUpload(files, name, pin, limit);
  });
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

function renderAll() {
  renderNode();
  renderSummary();
  renderPins();
  renderSync();
  renderChosen();
  for (const upload of uploads) renderUpload(upload);
  for (const panel of [pinPanel, unpinPanel, gcPanel, recoverPanel]) panel.render();
}

initPage("title.pins");
readLocation();
setupCatalogue();
setupUploads();
setupSelection();
setupPinForm();
setupNotifyToggle($("#notify-toggle"));
$("#sync-button").addEventListener("click", startSync);
$("#gc-button").addEventListener("click", startGc);
$("#recover-button").addEventListener("click", startRecovery);
onLanguageChange(renderAll);
renderAll();
loadPins();
followActiveSync();
loadSiteInfo().then((info) => {
  node.gateway = info.gateway ? info.gateway.replace(/\/+$/, "") : null;
  $("#replication-fields").hidden = !info.cluster;
});
// The overview refreshes while the page is visible (the poller slows down while it is hidden).
new Poller(loadNode, { interval: NODE_REFRESH_MS, hiddenInterval: 60000, maxInterval: 300000 }).start();
