// The pins page: the node, the catalogue, the pin sync, pinning and
// unpinning, garbage collection; file uploads are in uploads.js.

import { setupHistory } from "./history.js";
import { peerCount } from "./peers.js";
import {
  $, ApiError, cidView, copyButton, el, errorText, fill, formatAgo, formatBytes, formatDuration, formatNumber,
  formatTime, getJSON, initPage, loadSiteInfo, onLanguageChange, Poller, postJSON, t, timeElement, toast,
  translateTaskMessage, withQuery,
} from "./common.js";
import {
  failedCount, gatewayLink, isActive, isPartial, setupNotifyToggle, taskDuration, TaskPanel,
} from "./taskview.js";
import { renderUploads, setupUploads } from "./uploads.js";

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
    node.error = error;
  }
  renderNode();
  renderPins();
  renderUploads();
  return true;
}

/** Why the node cannot be reached: the reason alone (a worker-style sentence, translated here). */
function nodeErrorText(error) {
  return error instanceof ApiError && error.data.reason ? translateTaskMessage(error.data.reason) : errorText(error);
}

function renderNode() {
  const data = node.data;
  const overview = $("#node-overview");
  if (node.error) {
    fill(overview, el("p", { class: "alert", role: "alert", id: "node-error" },
      t("node.unreachable", { error: nodeErrorText(node.error) })));
    return;
  }
  if (!data) {
    fill(overview, el("p", { class: "muted" }, t("loading")));
    return;
  }
  const item = (key, id, ...value) => el("div", { class: id === "node-id" ? "node-item node-item-wide" : "node-item" },
    el("dt", {}, t(key)), el("dd", { id }, ...value));
  const used = data.storage_max ? Math.min(1, data.repo_size / data.storage_max) : 0;
  const bar = el("div", {
    class: "progress repo-bar", role: "progressbar", "aria-label": t("node.repo"), "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": String(Math.round(used * 100)), "data-status": "running",
  }, el("div", { class: "progress-fill", "data-width": String(used) }));
  bar.firstChild.style.width = `${(used * 100).toFixed(2)}%`;
  if (data.storage_level) bar.dataset.level = data.storage_level;
  fill(overview, el("dl", { class: "node-overview" },
    item("node.id", "node-id", data.id
      ? el("span", { class: "peer-id" }, el("code", { title: data.id }, data.id), copyButton(data.id)) : t("dash")),
    item("node.version", "node-version", data.agent_version || t("dash")),
    item("node.repo", "node-repo",
      data.storage_max ? t("node.repoValue", { size: formatBytes(data.repo_size), max: formatBytes(data.storage_max) })
        : formatBytes(data.repo_size), data.storage_max ? bar : null, repoLevel(data)),
    item("node.objects", "node-objects", data.num_objects == null ? t("dash") : formatNumber(data.num_objects)),
    item("node.peers", "node-peers", peerCount(data.peers || 0)),
    item("node.gateway", "node-gateway", gateway() ? el("a", {
      href: gateway(), target: "_blank", rel: "noopener noreferrer",
    }, gateway()) : t("dash"))));
}

/** Past the warning or the alarm level: a sentence under the repository's bar. */
function repoLevel(data) {
  if (data.storage_level !== "warn" && data.storage_level !== "alarm") return null;
  const alarm = data.storage_level === "alarm";
  return el("p", { id: "repo-level", class: alarm ? "alert" : "note", role: alarm ? "alert" : "status" },
    t(alarm ? "node.repoAlarm" : "node.repoWarn", {
      percent: formatNumber(data.storage_percent, 1), limit: alarm ? data.repo_alarm_percent : data.repo_warn_percent,
    }));
}

const gcPanel = new TaskPanel(document.getElementById("gc-task"), { onEnd: () => loadNode() });

async function startGc() {
  $("#gc-button").disabled = true;
  try {
    const answer = await postJSON("/node/gc");
    toast(() => t("node.gcStarted", { id: answer.taskId }));
    gcPanel.watch(answer.taskId, "repo_gc");
  } catch (error) {
    toast(error, "error");
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
  linkDownloads();
}

// The downloads carry the catalogue's current search, filter and sort (every page of it).
function linkDownloads() {
  for (const format of ["csv", "jsonl"]) {
    $(`#download-${format}`).href = withQuery("/api/pins/export", {
      format, q: catalogue.q, status: catalogue.status, sort: catalogue.sort,
    });
  }
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
    catalogue.error = error;
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

const recoverPanel = new TaskPanel(document.getElementById("recover-task"), { gateway, onEnd: () => loadPins() });

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
    toast(() => t("cluster.recoverStarted", { id: answer.taskId }));
    recoverPanel.watch(answer.taskId, "pin_recover");
  } catch (error) {
    toast(error, "error");
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
const unpinPanel = new TaskPanel(document.getElementById("unpin-task"), { gateway, onEnd: () => loadPins() });

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
    toast(() => t("unpin.started", { n: formatNumber(cids.length), id: answer.taskId }));
    clearSelection();
    unpinPanel.watch(answer.taskId, "pin_remove");
  } catch (error) {
    toast(error, "error");
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

const pinPanel = new TaskPanel(document.getElementById("pin-task"), { gateway, onEnd: () => loadPins() });

/** The text file chosen for the pin form, by name and size, or that there is none. */
function renderPinFile() {
  const file = $("#pin-file").files[0];
  $("#pin-file-name").textContent = file ? `${file.name} · ${formatBytes(file.size)}` : t("pinadd.noFile");
  $("#pin-file-clear").hidden = !file;
}

function setupPinForm() {
  const form = $("#pin-form");
  const file = $("#pin-file");
  // The page's own button opens the file input, whose own words are the browser's, not the reader's.
  $("#pin-file-button").addEventListener("click", () => file.click());
  file.addEventListener("change", renderPinFile);
  $("#pin-file-clear").addEventListener("click", () => {
    file.value = "";
    renderPinFile();
    $("#pin-file-button").focus();
  });
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
      toast(() => t("pinadd.needInput"), "error");
      return;
    }
    $("#pin-submit").disabled = true;
    try {
      const answer = await postJSON("/pins/add", body);
      toast(() => t("pinadd.started", { n: formatNumber(answer.valid), id: answer.taskId }));
      if (answer.storage_warning) toast(answer.storage_warning, "warn");
      if (answer.invalid) {
        toast(() => t("pinadd.skipped", { n: formatNumber(answer.invalid), lines: answer.invalid_lines.join(", ") }));
      }
      form.reset();
      renderPinFile();
      pinPanel.watch(answer.taskId, "pin_add");
    } catch (error) {
      toast(error, "error");
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
  if (catalogue.error) emptyText = errorText(catalogue.error);
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

let tableRefresh = { at: 0, progress: 0 };

/** The sync's main line: its progress in pins, or how it ended. */
function syncSummary(task) {
  if (task.status === "running") {
    if (!task.total) return null;
    if (sizesPending(task)) {
      return t("sync.sizesProgress", {
        progress: formatNumber(task.progress), total: formatNumber(task.total), pct: task.percentage,
      });
    }
    return t("sync.progress", {
      progress: formatNumber(task.progress), total: formatNumber(task.total), pct: task.percentage,
    });
  }
  if (task.status === "completed") {
    const reported = task.result && task.result.duration_s;
    const duration = formatDuration(typeof reported === "number" ? reported : taskDuration(task));
    return isPartial(task) ? t("sync.completedPartial", { duration, n: formatNumber(failedCount(task)) })
      : t("sync.completed", { duration });
  }
  return t(task.status === "failed" ? "sync.failed" : "sync.cancelled");
}

/** Whether a sync has applied its listing and is still looking up sizes (the catalogue is shown meanwhile). */
function sizesPending(task) {
  return Boolean(task && task.status === "running" && task.result && task.result.phase === "sizes");
}

const syncPanel = new TaskPanel(document.getElementById("sync-task"), {
  summary: syncSummary, showType: false, dismissable: false, idPrefix: "sync",
  onUpdate: (task) => {
    $("#sync-button").disabled = Boolean(task && isActive(task));
    $("#sizes-pending").hidden = !sizesPending(task);
    // Let the table fill while the sync writes, without reloading it every second.
    if (task && isActive(task) && task.progress !== tableRefresh.progress
        && Date.now() - tableRefresh.at >= TABLE_REFRESH_MS) {
      tableRefresh = { at: Date.now(), progress: task.progress };
      loadPins();
    }
  },
  onEnd: () => loadPins(),
});

function watchSync(id) {
  tableRefresh = { at: Date.now(), progress: 0 };
  $("#sync-button").disabled = true;
  syncPanel.watch(id, "pin_sync");
}

async function startSync() {
  $("#sync-button").disabled = true;
  try {
    const answer = await postJSON("/pins/sync");
    watchSync(answer.taskId);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.data.taskId) {
      toast(() => t("sync.attached"));
      watchSync(error.data.taskId);
    } else {
      toast(error, "error");
      $("#sync-button").disabled = false;
    }
  }
}

/** On arrival, follow a sync that is already under way. */
async function followActiveSync() {
  try {
    for (const status of ["running", "pending"]) {
      const data = await getJSON(withQuery("/api/tasks", { type: "pin_sync", status, limit: 1 }));
      if (data.tasks.length) {
        if (!syncPanel.task) watchSync(data.tasks[0].id);
        return;
      }
    }
  } catch (error) {
    toast(error, "error");
  }
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

function renderAll() {
  renderNode();
  renderSummary();
  renderPins();
  renderPinFile();
  renderUploads();
  for (const panel of [syncPanel, pinPanel, unpinPanel, gcPanel, recoverPanel]) panel.render();
}

initPage("title.pins");
readLocation();
linkDownloads();
setupCatalogue();
setupUploads({ gateway, onAdded: () => loadPins() });
setupSelection();
setupPinForm();
setupNotifyToggle($("#notify-toggle"));
setupHistory();
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
