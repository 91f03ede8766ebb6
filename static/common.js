// What every page shares: DOM building, talking to the server, the poller,
// formatting, the language switch, notices and the page frame. The task
// widgets are in taskview.js.

import { LANGUAGES, applyTranslations, language, setCurrentLanguage, t, translateTaskMessage } from "./i18n.js";

export { language, t, translateTaskMessage };

// ---------------------------------------------------------------------------
// DOM
// ---------------------------------------------------------------------------

// Listeners set through el() are kept per element, so that an element
// updated in place (see fill) takes the new element's listeners.
const HANDLERS = Symbol("handlers");

function listen(node, type, handler) {
  if (!node[HANDLERS]) node[HANDLERS] = {};
  if (!(type in node[HANDLERS])) node.addEventListener(type, (event) => node[HANDLERS][type]?.(event));
  node[HANDLERS][type] = handler;
}

/** A new element: el("a", {href: "/", class: "x", onclick: fn}, "text", child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name.startsWith("on")) listen(node, name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child != null && child !== false));
  return node;
}

/**
 * Make `node`'s children look like `children` (null and false left out),
 * changing in place only what differs: a focused button keeps its focus,
 * selected text stays selected, an opened <details> stays open, a bar
 * slides from its old width. Children with a `data-key` are matched by it.
 */
export function fill(node, ...children) {
  morphChildren(node, children.flat().filter((child) => child != null && child !== false)
    .map((child) => (typeof child === "string" ? document.createTextNode(child) : child)));
}

function morphChildren(parent, wanted) {
  const keyed = new Map();
  for (const child of parent.childNodes) {
    if (child.nodeType === Node.ELEMENT_NODE && child.dataset.key) keyed.set(child.dataset.key, child);
  }
  let index = 0;
  for (const next of wanted) {
    const key = next.nodeType === Node.ELEMENT_NODE ? next.dataset.key : undefined;
    let current = parent.childNodes[index];
    if (key && keyed.has(key) && keyed.get(key) !== current) {
      current = keyed.get(key);
      parent.insertBefore(current, parent.childNodes[index] || null);
    }
    if (!current) parent.append(next);
    else if (key && (!current.dataset || current.dataset.key !== key)) parent.insertBefore(next, current);
    else morph(current, next);
    index += 1;
  }
  while (parent.childNodes.length > index) parent.lastChild.remove();
}

function morph(from, to) {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
    from.replaceWith(to);
    return;
  }
  if (from.nodeType !== Node.ELEMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return;
  }
  for (const attr of [...from.attributes]) {
    if (!to.hasAttribute(attr.name) && !(attr.name === "open" && from.nodeName === "DETAILS")) {
      from.removeAttribute(attr.name);
    }
  }
  for (const attr of [...to.attributes]) {
    if (from.getAttribute(attr.name) === attr.value) continue;
    // The CSP allows styles set through the CSSOM only, not as an attribute.
    if (attr.name === "style") from.style.cssText = to.style.cssText;
    else from.setAttribute(attr.name, attr.value);
  }
  if (from.nodeName === "INPUT") from.checked = to.checked;
  const handlers = to[HANDLERS] || {};
  for (const type of Object.keys(from[HANDLERS] || {})) if (!(type in handlers)) from[HANDLERS][type] = null;
  for (const [type, handler] of Object.entries(handlers)) listen(from, type, handler);
  morphChildren(from, [...to.childNodes]);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// ---------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------

// Asks the server for its error sentences in every language, so that a
// sentence already shown can be said again when the reader switches.
const TRANSLATIONS_HEADER = "X-IPFSMaster-Translations";

/** The server answered with an error status; `data` is its JSON answer, if any. */
export class ApiError extends Error {
  constructor(status, data) {
    const answer = data && typeof data === "object" ? data : {};
    super(answer.error || `HTTP ${status}`);
    this.status = status;
    this.data = answer;
  }

  /** The server's sentence in the reader's current language. */
  text() {
    const translations = this.data.translations || {};
    return translations[language()] || this.data.error || t("error.http", { status: this.status });
  }
}

/** The request never got an answer. */
class NetworkError extends Error {}

/** What went wrong, said in the reader's current language. */
export function errorText(error) {
  if (error instanceof ApiError) return error.text();
  if (error instanceof NetworkError) return t("error.network");
  return error.message;
}

/** Headers that every request of the pages sends, for XMLHttpRequest and fetch alike. */
export const PAGE_HEADERS = { Accept: "application/json", [TRANSLATIONS_HEADER]: "1" };

/** fetch() with JSON in and out; throws ApiError or NetworkError. */
async function request(method, url, { text = false, send = undefined } = {}) {
  let response;
  const headers = { ...PAGE_HEADERS, Accept: text ? "text/plain" : "application/json" };
  // A FormData body sets its own multipart type; anything else goes as JSON.
  if (send !== undefined && !(send instanceof FormData)) headers["Content-Type"] = "application/json";
  try {
    response = await fetch(url, {
      method,
      headers,
      body: send === undefined || send instanceof FormData ? send : JSON.stringify(send),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new NetworkError("network");
  }
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  let body;
  try {
    body = isJson ? await response.json() : await response.text();
  } catch (error) {
    throw new NetworkError("network");
  }
  if (response.status === 401) {
    // The login expired: the page itself leads to the login form.
    window.location.reload();
  }
  if (!response.ok) throw new ApiError(response.status, isJson ? body : null);
  return body;
}

export const getJSON = (url) => request("GET", url);
export const postJSON = (url, send) => request("POST", url, { send });
export const getText = (url) => request("GET", url, { text: true });

/** "/api/tasks?status=running&limit=1": a URL with its query, empty values left out. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value != null) query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// The small "connection lost" note in the header, shown while any poller
// is failing to reach the server.
const failingPollers = new Set();

function updateConnectionNote() {
  const note = $("#connection-note");
  if (note) note.hidden = failingPollers.size === 0;
}

// ---------------------------------------------------------------------------
// The poller
// ---------------------------------------------------------------------------

const livePollers = new Set();

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) for (const poller of livePollers) poller.wake();
});

// A quick poller's first delays: a task that ends in a fraction of a second
// shows its end as soon as it has one, and a long one is soon polled at the
// poller's own pace (after at most a second of quick looks).
const QUICK_FIRST_DELAY = 100;
const QUICK_GROWTH = 1.5;
const QUICK_LAST_DELAY = 1000;

/**
 * Calls `tick` again and again: about every `interval` ms while the page is
 * visible, less and less often while it is hidden, and at once when it shows
 * again. With `quick`, the first call is at once and the next ones follow
 * quickly, slowing down to the poller's own pace (again after each wake()).
 * Each call waits for the previous one, so one poller never has two
 * requests in flight. `tick` returns false to stop. Unanswered requests and
 * server errors back off and retry; other errors stop and go to `onError`.
 */
export class Poller {
  constructor(tick, {
    interval = 1000, hiddenInterval = 5000, maxInterval = 15000, quick = false, onError = null,
  } = {}) {
    this.tick = tick;
    this.interval = interval;
    this.hiddenInterval = hiddenInterval;
    this.maxInterval = maxInterval;
    this.quick = quick;
    this.onError = onError;
    this.running = false;
    this.busy = false;
    this.timer = null;
    this.failures = 0;
    this.hiddenRounds = 0;
    this.quickDelay = QUICK_FIRST_DELAY;
  }

  start() {
    if (this.running) {
      this.wake();
      return;
    }
    this.running = true;
    this.failures = 0;
    this.quickDelay = QUICK_FIRST_DELAY;
    livePollers.add(this);
    this.schedule(0);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    livePollers.delete(this);
    failingPollers.delete(this);
    updateConnectionNote();
  }

  /** Poll now, unless a request is already in flight. */
  wake() {
    if (this.running && !this.busy) {
      this.hiddenRounds = 0;
      this.quickDelay = QUICK_FIRST_DELAY;
      this.schedule(0);
    }
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), delay);
  }

  async run() {
    this.timer = null;
    if (!this.running || this.busy) return;
    this.busy = true;
    let again = true;
    try {
      again = (await this.tick()) !== false;
      this.failures = 0;
      failingPollers.delete(this);
    } catch (error) {
      if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
        this.failures += 1;
        if (error instanceof NetworkError) failingPollers.add(this);
      } else {
        again = false;
        if (this.onError) this.onError(error);
      }
    } finally {
      this.busy = false;
      updateConnectionNote();
    }
    if (!this.running) return;
    if (!again) this.stop();
    else this.schedule(this.nextDelay());
  }

  nextDelay() {
    if (this.failures) return Math.min(this.maxInterval, 1000 * 2 ** this.failures);
    if (document.hidden) {
      const delay = Math.min(this.maxInterval, this.hiddenInterval * 1.5 ** this.hiddenRounds);
      this.hiddenRounds += 1;
      return delay;
    }
    this.hiddenRounds = 0;
    if (this.quick && this.quickDelay < Math.min(this.interval, QUICK_LAST_DELAY)) {
      const delay = this.quickDelay;
      this.quickDelay *= QUICK_GROWTH;
      return delay;
    }
    return this.interval;
  }
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

export function formatNumber(value, fractionDigits = 0) {
  return new Intl.NumberFormat(language() === "zh" ? "zh-CN" : "en-US", {
    maximumFractionDigits: fractionDigits,
  }).format(value);
}

const BYTE_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

export function formatBytes(bytes) {
  if (bytes == null) return t("dash");
  if (Math.abs(bytes) < 1024) return `${formatNumber(bytes)} ${t("unit.B")}`;
  let value = bytes;
  let unit = -1;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${formatNumber(value, value < 10 ? 2 : value < 100 ? 1 : 0)} ${BYTE_UNITS[unit]}`;
}

/** "850 ms", "12.5 s", "3 min 12 s", "2 h 5 min"; `coarse` keeps only the largest unit. */
export function formatDuration(seconds, { coarse = false } = {}) {
  if (seconds == null || !Number.isFinite(seconds)) return t("dash");
  seconds = Math.max(0, seconds);
  if (coarse) {
    if (seconds < 60) return t("duration.s", { n: Math.round(seconds) });
    if (seconds < 3600) return t("duration.min", { n: Math.round(seconds / 60) });
    if (seconds < 86400) return t("duration.h", { n: Math.round(seconds / 3600) });
    return t("duration.d", { n: Math.round(seconds / 86400) });
  }
  if (seconds < 1) return t("duration.ms", { n: Math.round(seconds * 1000) });
  if (seconds < 60) return t("duration.s", { n: formatNumber(seconds, seconds < 10 ? 1 : 0) });
  const whole = Math.round(seconds);
  const [big, small, unit] = whole < 3600 ? [Math.floor(whole / 60), whole % 60, "min"]
    : whole < 86400 ? [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), "h"]
      : [Math.floor(whole / 86400), Math.floor((whole % 86400) / 3600), "d"];
  const pairs = { min: "duration.min_s", h: "duration.h_min", d: "duration.d_h" };
  return small ? t(pairs[unit], { a: big, b: small }) : t(`duration.${unit}`, { n: big });
}

const SERVER_TIME = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?$/;

/** A server timestamp (UTC "YYYY-MM-DD HH:MM:SS[.fff]") as a Date, or null. */
export function parseServerTime(text) {
  const match = SERVER_TIME.exec(text || "");
  if (!match) return null;
  const [, y, mo, d, h, mi, s, fraction] = match;
  const ms = fraction ? Math.round(parseFloat(fraction) * 1000) : 0;
  return new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, ms));
}

const pad = (n) => String(n).padStart(2, "0");

/** A server timestamp in local time, "YYYY-MM-DD HH:MM:SS". */
export function formatTime(text) {
  const date = parseServerTime(text);
  if (!date) return text || t("dash");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `
    + `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** "5 min ago" for a server timestamp. */
export function formatAgo(text) {
  const date = parseServerTime(text);
  if (!date) return t("dash");
  const seconds = (Date.now() - date.getTime()) / 1000;
  return seconds < 45 ? t("ago.now") : t("ago", { d: formatDuration(seconds, { coarse: true }) });
}

/** A <time> element: local time as text, UTC in its title. */
export function timeElement(text, { ago = false } = {}) {
  if (!text) return el("span", { class: "muted" }, t("dash"));
  const date = parseServerTime(text);
  return el("time", {
    datetime: date ? date.toISOString() : text,
    title: ago ? formatTime(text) : `${text} UTC`,
  }, ago ? formatAgo(text) : formatTime(text));
}

/** "bafybeig…x4pe": enough of a CID to tell it apart. */
function shortCid(cid, head = 8, tail = 6) {
  return cid.length > head + tail + 1 ? `${cid.slice(0, head)}…${cid.slice(-tail)}` : cid;
}

// ---------------------------------------------------------------------------
// Language, title, notices
// ---------------------------------------------------------------------------

const languageListeners = [];
let titleKey = "app.name";
let titleValues = {};
const titleProgress = new Map();

/** Call `render` again whenever the reader switches language. */
export function onLanguageChange(render) {
  languageListeners.push(render);
}

function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  document.cookie = `lang=${lang}; path=/; SameSite=Strict; max-age=31536000`;
  document.documentElement.lang = lang;
  setCurrentLanguage(lang);
  applyTranslations(document);
  updateLanguageButtons();
  updateTitle();
  redrawToasts();
  for (const render of languageListeners) render();
}

function updateLanguageButtons() {
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language()));
  }
}

export function setPageTitle(key, values = {}) {
  titleKey = key;
  titleValues = values;
  updateTitle();
}

/** Show a running task's percentage in the tab's title; null removes it. */
export function setTitleProgress(source, percentage) {
  if (percentage == null) titleProgress.delete(source);
  else titleProgress.set(source, percentage);
  updateTitle();
}

function updateTitle() {
  const base = t(titleKey, titleValues);
  const values = [...titleProgress.values()];
  if (!values.length) {
    document.title = base;
    return;
  }
  const mean = Math.floor(values.reduce((sum, value) => sum + value, 0) / values.length);
  document.title = `${mean}% · ${base}`;
}

// Each notice's way of saying itself, called again when the language changes.
const SAY = Symbol("say");

/**
 * A short notice in the corner. `message` says it: a function that gives
 * text or nodes in the current language (called again when the reader
 * switches), an error, or fixed text. Errors and warnings stay until
 * dismissed; with a `key`, a notice stays until dismissToast(key) (or its ×
 * button), and replaces an earlier one with the same key.
 */
export function toast(message, kind = "info", key = null) {
  const region = $("#toasts");
  if (!region) return;
  if (key) dismissToast(key);
  const item = el("div", {
    class: `toast toast-${kind}`, role: kind === "info" ? "status" : "alert", "data-toast": key,
  });
  item[SAY] = typeof message === "function" ? message
    : message instanceof Error ? () => errorText(message) : () => message;
  drawToast(item);
  region.append(item);
  if (kind === "info" && !key) setTimeout(() => item.remove(), 5000);
}

function drawToast(item) {
  fill(item, el("span", { class: "toast-text" }, item[SAY]()), dismissButton(() => item.remove()));
}

function redrawToasts() {
  for (const item of document.querySelectorAll("#toasts .toast")) drawToast(item);
}

export function dismissToast(key) {
  for (const item of document.querySelectorAll("[data-toast]")) {
    if (item.dataset.toast === key) item.remove();
  }
}

/** Copy through a hidden text area: for pages the clipboard API is not offered to (plain HTTP). */
function copyWithSelection(text) {
  const area = el("textarea", { readonly: true, "aria-hidden": "true" });
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied;
}

async function copyText(text) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch (error) {
    copied = copyWithSelection(text);
  }
  if (copied) toast(() => t("copy.done"));
  else toast(() => [t("copy.failed"), " ", el("code", { class: "selectable" }, text)], "error");
}

const SVG = "http://www.w3.org/2000/svg";

/** A small line icon drawn from SVG path data (no icon font needed). */
function icon(pathData) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", pathData);
  svg.append(path);
  return svg;
}

const COPY_ICON = "M5.5 5.5h7v8h-7z M3.5 10.5h-1v-8h7v1";
const CLOSE_ICON = "M4 4l8 8 M12 4l-8 8";

/** A button that copies `text` to the clipboard. */
export function copyButton(text) {
  return el("button", {
    type: "button", class: "icon-button", title: t("action.copy"), "aria-label": `${t("action.copy")} ${text}`,
    onclick: () => copyText(text),
  }, icon(COPY_ICON));
}

/** A CID shortened for reading, complete in its title, with a copy button. */
export function cidView(cid) {
  return el("span", { class: "cid" }, el("code", { title: cid }, shortCid(cid)), copyButton(cid));
}

/** A small "×" button that removes something from view. */
export function dismissButton(onclick) {
  return el("button", {
    type: "button", class: "icon-button", title: t("action.dismiss"), "aria-label": t("action.dismiss"), onclick,
  }, icon(CLOSE_ICON));
}

// ---------------------------------------------------------------------------
// The page frame
// ---------------------------------------------------------------------------

// The registry of task types (label, unit, ...), from /api/info once it is in.
let taskTypes = {};

/** The list of task types, as [name, label] in the reader's language. */
export function taskTypeChoices() {
  return Object.keys(taskTypes).map((type) => [type, taskTypeLabel(type)]);
}

export function taskTypeLabel(type) {
  const info = taskTypes[type];
  return info ? info.label[language()] || info.label.en : type;
}

/** What a task's progress counts: "items", "bytes" or "blocks". */
export function taskUnit(task) {
  return (taskTypes[task.task_type] && taskTypes[task.task_type].unit) || "items";
}

let siteInfo = null;

/** The console's settings the pages need (the upload limit, whether a password is set, the task types). */
export function loadSiteInfo() {
  if (!siteInfo) {
    siteInfo = getJSON("/api/info").then((info) => {
      taskTypes = info.task_types || {};
      return info;
    }).catch(() => {
      siteInfo = null; // unknown for now: ask again next time
      return { max_upload_bytes: null, password: false, task_types: {}, gateway: null };
    });
  }
  return siteInfo;
}

async function showLogout() {
  const info = await loadSiteInfo();
  const button = $("#logout-button");
  if (!button || !info.password) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
    window.location.assign("/login");
  });
}

/** The footer names the console's version (the git commit it was built from, if any). */
async function showVersion() {
  const info = await loadSiteInfo();
  const footer = $("#app-version");
  if (!footer || !info.version) return;
  footer.textContent = `IPFSMaster ${info.version}`;
  footer.hidden = false;
}

/** Translate the page, wire the language switch and mark the current nav link. */
export function initPage(key) {
  titleKey = key;
  applyTranslations(document);
  updateLanguageButtons();
  updateTitle();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.getAttribute("href") === window.location.pathname) link.setAttribute("aria-current", "page");
  }
  // Only pages behind the login ask /api/info: the login form must not.
  if (!document.querySelector(".nav")) return;
  showLogout();
  showVersion();
  // Labels and units of task types come with the site's info: draw again once it is in.
  loadSiteInfo().then(() => {
    for (const render of languageListeners) render();
  });
}
