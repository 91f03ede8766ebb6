// The pins page's "Pinning service requests" section: every pin that other
// devices asked for through the pinning service API (/psa), who asked (the
// token's name), its status and age, and the node's error; the operator
// cancels a queued or pinning one and retries a failed one.

import {
  $, ApiError, cidView, el, errorText, fill, formatAgo, formatNumber, formatTime, getJSON, onLanguageChange, Poller,
  postJSON, t, toast, translateTaskMessage, withQuery,
} from "./common.js";

const STATUSES = ["queued", "pinning", "pinned", "failed"];
// A request's status drawn as the task status it resembles.
const BADGES = { queued: "running", pinning: "running", pinned: "completed", failed: "failed" };
const state = { data: null, error: null, status: "" };

async function load() {
  try {
    state.data = await getJSON(withQuery("/api/psa/requests", { status: state.status, limit: 50 }));
    state.error = null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    state.error = error;
  }
  render();
}

async function act(kind, request) {
  try {
    await postJSON(withQuery(`/api/psa/requests/${kind}`, { id: request.requestid }));
    toast(() => t(`psa.${kind}Done`, { cid: request.cid }));
  } catch (error) {
    toast(error, "error");
  }
  poller.wake();
}

function actions(request) {
  if (request.status === "queued" || request.status === "pinning") {
    return el("button", { type: "button", class: "button small", "data-action": "cancel",
      onclick: () => act("cancel", request) }, t("psa.cancel"));
  }
  if (request.status === "failed") {
    return el("button", { type: "button", class: "button small", "data-action": "retry",
      onclick: () => act("retry", request) }, t("psa.retry"));
  }
  return el("span", { class: "muted" }, t("dash"));
}

function row(request) {
  return el("tr", { "data-key": request.requestid, "data-requestid": request.requestid },
    el("td", { "data-label": t("col.cid") }, cidView(request.cid)),
    el("td", { "data-label": t("col.name") }, request.name || el("span", { class: "muted" }, t("dash"))),
    el("td", { "data-label": t("psa.col.token"), class: "psa-token" }, request.token || t("dash")),
    el("td", { "data-label": t("psa.col.status") },
      el("span", { class: `badge badge-${BADGES[request.status]}`, "data-status": request.status },
        t(`psa.status.${request.status}`))),
    el("td", { "data-label": t("psa.col.age") },
      el("time", { title: formatTime(request.created_at) }, formatAgo(request.created_at))),
    el("td", { "data-label": t("psa.col.error"), class: "psa-error" },
      request.error ? translateTaskMessage(request.error) : ""),
    el("td", { "data-label": t("psa.col.actions") }, actions(request)));
}

function render() {
  const body = $("#psa-body");
  const empty = $("#psa-empty");
  const counts = $("#psa-counts");
  if (state.error) {
    fill(body);
    empty.hidden = false;
    empty.textContent = errorText(state.error);
    return;
  }
  if (!state.data) return;
  fill(counts, STATUSES.map((status) => `${t(`psa.status.${status}`)} ${formatNumber(state.data.counts[status])}`)
    .join(" · "));
  fill(body, ...state.data.requests.map(row));
  empty.hidden = state.data.requests.length > 0;
  empty.textContent = t("psa.none");
}

const poller = new Poller(load, { interval: 3000, hiddenInterval: 15000, maxInterval: 60000 });
$("#psa-filter").addEventListener("change", (event) => {
  state.status = event.target.value;
  poller.wake();
});
onLanguageChange(render);
poller.start();
