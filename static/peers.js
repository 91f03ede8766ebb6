// The node's connected peers: the list that the peer count of the node
// overview opens (id, address, latency), refreshed while it is open and
// the page is visible.

import { $, ApiError, el, fill, formatNumber, getJSON, onLanguageChange, Poller, t, translateTaskMessage } from "./common.js";

const REFRESH_MS = 5000;
// A node with thousands of connections: the first ones are shown, the rest counted.
const MAX_SHOWN = 500;

const peers = { open: false, data: null, error: null, poller: null, listening: false };

/** The peer count of the node overview: a button that opens and closes the list. */
export function peerCount(count) {
  return el("button", {
    type: "button", class: "link-button", id: "peers-toggle", "aria-controls": "peers-panel",
    "aria-expanded": peers.open ? "true" : "false", title: t(peers.open ? "peers.hide" : "peers.show"),
    onclick: () => (peers.open ? closePeers() : openPeers()),
  }, formatNumber(count));
}

function openPeers() {
  peers.open = true;
  if (!peers.listening) {
    onLanguageChange(renderPeers);
    peers.listening = true;
  }
  peers.poller = new Poller(loadPeers, { interval: REFRESH_MS, hiddenInterval: 60000, maxInterval: 60000 });
  peers.poller.start();
  renderPeers();
}

function closePeers() {
  peers.open = false;
  if (peers.poller) peers.poller.stop();
  peers.poller = null;
  renderPeers();
  const toggle = $("#peers-toggle");
  if (toggle) toggle.focus();
}

async function loadPeers() {
  try {
    peers.data = await getJSON("/api/node/peers");
    peers.error = null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error; // the poller says the connection is lost, and tries again
    peers.error = error;
  }
  renderPeers();
  return peers.open;
}

/** A latency in milliseconds as a person reads it; "not measured" when the node has none. */
function latencyText(ms) {
  if (ms == null) return t("peers.unmeasured");
  return t("peers.ms", { n: formatNumber(ms, ms < 10 ? 2 : ms < 100 ? 1 : 0) });
}

function peerRow(peer) {
  return el("tr", { "data-key": `peer-${peer.id}-${peer.addr}` },
    el("td", { class: "peer-id", "data-label": t("peers.id") }, el("code", { title: peer.id }, peer.id)),
    el("td", { class: "peer-addr", "data-label": t("peers.addr") }, el("code", {}, peer.addr)),
    el("td", { class: "num", "data-label": t("peers.latency") }, latencyText(peer.latency)));
}

function peersBody() {
  if (peers.error) {
    const reason = peers.error.data && peers.error.data.reason
      ? translateTaskMessage(peers.error.data.reason) : peers.error.message;
    return el("p", { class: "alert", role: "alert", id: "peers-error" }, t("node.unreachable", { error: reason }));
  }
  if (!peers.data) return el("p", { class: "muted" }, t("loading"));
  const list = peers.data.peers;
  if (!list.length) {
    return el("p", { class: "muted", id: "peers-empty" }, t(peers.data.online === false ? "peers.offline" : "peers.none"));
  }
  return [
    el("div", { class: "table-wrap" }, el("table", { class: "table peers-table" },
      el("caption", { class: "visually-hidden" }, t("peers.heading")),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, t("peers.id")),
        el("th", { scope: "col" }, t("peers.addr")),
        el("th", { scope: "col", class: "num" }, t("peers.latency")))),
      el("tbody", { id: "peers-body" }, list.slice(0, MAX_SHOWN).map(peerRow)))),
    list.length > MAX_SHOWN ? el("p", { class: "muted" }, t("peers.more", { n: formatNumber(list.length - MAX_SHOWN) }))
      : null,
  ];
}

/** Draw the list (or hide it), and keep the count's button in step. */
function renderPeers() {
  const panel = $("#peers-panel");
  const toggle = $("#peers-toggle");
  if (toggle) {
    toggle.setAttribute("aria-expanded", peers.open ? "true" : "false");
    toggle.title = t(peers.open ? "peers.hide" : "peers.show");
  }
  panel.hidden = !peers.open;
  if (!peers.open) {
    fill(panel);
    return;
  }
  const count = peers.data && !peers.error ? ` (${formatNumber(peers.data.peers.length)})` : "";
  fill(panel,
    el("div", { class: "card-head" },
      el("h3", { id: "peers-heading" }, t("peers.heading") + count),
      el("button", { type: "button", class: "button small", id: "peers-close", onclick: closePeers }, t("peers.close"))),
    peersBody());
}
