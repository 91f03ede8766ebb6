// The alert banner of every page: the open alerts (GET /api/alerts), each
// dismissable for a while (it comes back if the alert is still open then),
// and a desktop notification when one opens, for readers who opted in to
// notifications (the same opt-in as for long tasks).

import { $, dismissButton, el, fill, getJSON, onLanguageChange, Poller, t } from "./common.js";

const DISMISSED_KEY = "ipfsmaster.dismissedAlerts";   // {alert id: until when (ms)}
const NOTIFIED_KEY = "ipfsmaster.notifiedAlerts";     // {alert id: 1}
const NOTIFY_KEY = "ipfsmaster.notify";
const DISMISS_MS = 60 * 60 * 1000;
const POLL_MS = 5000;

let openAlerts = [];

function readStore(key) {
  try {
    return JSON.parse(window.localStorage.getItem(key) || "{}") || {};
  } catch (error) {
    return {};
  }
}

function writeStore(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch (error) {
    // Storage is off (private mode): dismissals last for this page only.
  }
}

/** Keep only the entries of alerts still open: a closed alert's id never comes back. */
function pruned(store) {
  const ids = new Set(openAlerts.map((alert) => String(alert.id)));
  return Object.fromEntries(Object.entries(store).filter(([id]) => ids.has(id)));
}

function dismiss(id) {
  const dismissed = pruned(readStore(DISMISSED_KEY));
  dismissed[id] = Date.now() + DISMISS_MS;
  writeStore(DISMISSED_KEY, dismissed);
  draw();
}

function banner() {
  let node = $("#alert-banner");
  if (!node) {
    node = el("div", { id: "alert-banner", class: "alert-banner", "aria-live": "polite" });
    const main = $("main");
    if (!main) return null;
    main.prepend(node);
  }
  return node;
}

function draw() {
  const node = banner();
  if (!node) return;
  const dismissed = readStore(DISMISSED_KEY);
  const now = Date.now();
  const shown = openAlerts.filter((alert) => !(dismissed[alert.id] > now));
  node.hidden = !shown.length;
  fill(node, ...shown.map((alert) => el("div", {
    class: `alert alert-item alert-${alert.kind}`, role: "alert", "data-alert-id": String(alert.id),
  }, el("span", { class: "alert-text" }, el("strong", {}, t(`alert.${alert.kind}`)), " ", alert.message),
  dismissButton(() => dismiss(alert.id)))));
}

/** A desktop notification for each alert this browser has not been told of yet. */
function notifyNew() {
  const notified = pruned(readStore(NOTIFIED_KEY));
  const allowed = "Notification" in window && Notification.permission === "granted"
    && window.localStorage.getItem(NOTIFY_KEY) === "1";
  for (const alert of openAlerts) {
    if (notified[alert.id]) continue;
    notified[alert.id] = 1;
    if (!allowed) continue;
    try {
      new Notification(t("app.name"), { body: `${t(`alert.${alert.kind}`)}: ${alert.message}`, tag: `alert-${alert.id}` });
    } catch (error) {
      // Some platforms only allow notifications from a service worker.
    }
  }
  writeStore(NOTIFIED_KEY, notified);
}

const poller = new Poller(async () => {
  const answer = await getJSON("/api/alerts");
  openAlerts = (answer.alerts || []).filter((alert) => !alert.closed_at);
  writeStore(DISMISSED_KEY, pruned(readStore(DISMISSED_KEY)));
  draw();
  notifyNew();
}, { interval: POLL_MS, hiddenInterval: POLL_MS * 3 });

// The messages come from the server in the reader's language: ask again after a switch.
onLanguageChange(() => {
  draw();
  poller.wake();
});
poller.start();
