// The pins page's History: pins, the repository's size and the tasks that
// ended per hour, from the samples the server keeps (GET /api/history),
// drawn as inline SVG, with the values on hover and the same figures as
// tables (for screen readers always, for everyone at a click).

import {
  $, ApiError, el, errorText, fill, formatBytes, formatNumber, getJSON, onLanguageChange,
  parseServerTime, Poller, t, withQuery,
} from "./common.js";

// The server writes a sample a minute: a look a minute shows each new one.
const REFRESH_MS = 60000;
const RANGES = { day: 24, week: 24 * 7, month: 24 * 30 };
const HOUR_MS = 3600000;
const DAY_MS = 24 * HOUR_MS;
const TIME_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((minutes) => minutes * 60000);
const HEIGHT = 200;
const MARGIN = { top: 26, right: 14, bottom: 30, left: 74 };
// At most about one point per this many pixels: a month of samples stays a light drawing.
const PIXELS_PER_POINT = 3;
const SVG = "http://www.w3.org/2000/svg";

const history = { samples: null, loadedAt: 0, error: null, range: "day", tables: false, poller: null };

/** A new SVG element: svg("line", {x1: 0, ...}, child, ...). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value != null) node.setAttribute(name, String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

const title = (text) => svg("title", {}, text);

/** A sample's time, in milliseconds. */
const when = (sample) => parseServerTime(sample.at).getTime();

const pad = (n) => String(n).padStart(2, "0");

/** A time as the axes and tables show it: local, to the minute; or its date alone, or its clock time alone. */
function timeText(ms, { dateOnly = false, timeOnly = false } = {}) {
  const date = new Date(ms);
  const day = `${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (dateOnly) return day;
  if (timeOnly) return clock;
  return `${date.getFullYear()}-${day} ${clock}`;
}

/** Times on the hour, the half hour, midnight... between `from` and `to`, at most `most` of them. */
function timeTicks(from, to, most) {
  const every = TIME_STEPS.find((step) => (to - from) / step <= most) || TIME_STEPS[TIME_STEPS.length - 1];
  // Round in local time: 00:00 is the reader's midnight.
  const offset = -new Date(from).getTimezoneOffset() * 60000;
  const ticks = [];
  for (let ms = Math.ceil((from + offset) / every) * every - offset; ms <= to; ms += every) ticks.push(ms);
  return { ticks, step: every };
}

/** Rounded steps for an axis from 0 to at least `max`: [top, step]. */
function niceScale(max, ticks = 4) {
  if (!(max > 0)) return [1, 1];
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw);
  return [Math.ceil(max / step) * step, step];
}

/** Byte axes step in powers of 1024, so that the ticks read 256 MiB, 512 MiB, not 268 MB. */
function niceBytes(max, ticks = 4) {
  if (!(max > 0)) return [1024, 256];
  let unit = 1;
  while (max / unit >= 1024 && unit < 1024 ** 5) unit *= 1024;
  const [top, step] = niceScale(max / unit, ticks);
  return [top * unit, step * unit];
}

/** Every `step`-th sample and the last: no more points than the chart has room for. */
function thin(samples, width) {
  const room = Math.max(2, Math.floor(width / PIXELS_PER_POINT));
  if (samples.length <= room) return samples;
  const step = Math.ceil(samples.length / room);
  const kept = samples.filter((_, i) => i % step === 0);
  if (kept[kept.length - 1] !== samples[samples.length - 1]) kept.push(samples[samples.length - 1]);
  return kept;
}

/** The tables' rows: the last sample of each hour, so that a day reads in 24 rows. */
function lastOfEachHour(samples) {
  return samples.filter((sample, i) => i === samples.length - 1
    || Math.floor(when(sample) / HOUR_MS) !== Math.floor(when(samples[i + 1]) / HOUR_MS));
}

/**
 * Tasks that ended, per hour: {hour (ms), failed, other}. A sample holds
 * running totals, so what ended between two samples is their difference;
 * it counts in the hour of the later one.
 */
function tasksPerHour(samples) {
  const hours = new Map();
  for (let i = 1; i < samples.length; i += 1) {
    const [before, after] = [samples[i - 1], samples[i]];
    const ended = Math.max(0, after.tasks_finished - before.tasks_finished);
    const failed = Math.min(ended, Math.max(0, after.tasks_failed - before.tasks_failed));
    if (!ended) continue;
    const hour = Math.floor(when(after) / HOUR_MS) * HOUR_MS;
    const counts = hours.get(hour) || { hour, failed: 0, other: 0 };
    counts.failed += failed;
    counts.other += ended - failed;
    hours.set(hour, counts);
  }
  return [...hours.values()].sort((a, b) => a.hour - b.hour);
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

/** The frame every chart shares: scales, grid, axes with their labels; returns {root, x, y, ...}. */
function frame({ width, from, to, top, step, format, yLabel, label }) {
  const plot = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: HEIGHT - MARGIN.bottom };
  const span = Math.max(1, to - from);
  const x = (ms) => plot.left + ((ms - from) / span) * (plot.right - plot.left);
  const y = (value) => plot.bottom - (value / top) * (plot.bottom - plot.top);
  const root = svg("svg", {
    class: "chart", width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": label,
  });
  const grid = svg("g", { class: "chart-grid" });
  const axis = svg("g", { class: "chart-axis" });
  for (let value = 0; value <= top + step / 2; value += step) {
    grid.append(svg("line", { x1: plot.left, x2: plot.right, y1: y(value), y2: y(value) }));
    axis.append(svg("text", { x: plot.left - 6, y: y(value), "text-anchor": "end", "dominant-baseline": "middle" },
      format(value)));
  }
  // The y axis says what it counts, above it, level (Chinese reads badly turned on its side).
  axis.append(svg("text", { class: "chart-axis-title", x: 0, y: 11 }, yLabel));
  // Round times along the bottom: clock times within a day or so, dates past that.
  const { ticks, step: every } = timeTicks(from, to, Math.max(2, Math.floor((plot.right - plot.left) / 64)));
  for (const ms of ticks) {
    const at = x(ms);
    axis.append(svg("text", {
      class: "chart-x", x: at, y: plot.bottom + 18,
      "text-anchor": at < plot.left + 16 ? "start" : at > plot.right - 16 ? "end" : "middle",
    }, every >= DAY_MS ? timeText(ms, { dateOnly: true }) : timeText(ms, { timeOnly: true })));
  }
  axis.append(svg("line", {
    class: "chart-baseline", x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom,
  }));
  root.append(grid, axis);
  return { root, x, y, plot };
}

/** A line through the samples' `key`, broken where the value is unknown. */
function linePath(points, key, x, y) {
  let path = "";
  let drawing = false;
  for (const sample of points) {
    const value = sample[key];
    if (value == null) {
      drawing = false;
      continue;
    }
    path += `${drawing ? "L" : "M"}${x(when(sample)).toFixed(1)},${y(value).toFixed(1)}`;
    drawing = true;
  }
  return path;
}

/** A chart of lines over time: `series` are [{key, label, class, format}]. */
function lineChart({ samples, width, series, bytes, yLabel, label }) {
  const points = thin(samples, width - MARGIN.left - MARGIN.right);
  const values = points.flatMap((sample) => series.map((s) => sample[s.key])).filter((v) => v != null);
  const [top, step] = (bytes ? niceBytes : niceScale)(Math.max(0, ...values));
  let from = when(points[0]);
  let to = when(points[points.length - 1]);
  if (to - from < 60000) [from, to] = [from - 1800000, to + 1800000];
  const format = bytes ? formatBytes : (v) => formatNumber(v);
  const chart = frame({ width, from, to, top, step, format, yLabel, label });
  for (const s of series) {
    chart.root.append(svg("path", { class: `chart-line ${s.class}`, d: linePath(points, s.key, chart.x, chart.y) }));
    if (points.length === 1 && points[0][s.key] != null) {
      chart.root.append(svg("circle", { class: `chart-dot ${s.class}`, r: 3, cx: chart.x(when(points[0])),
        cy: chart.y(points[0][s.key]) }));
    }
  }
  // Hover: each point owns the band of the plot nearest to it, with its values in a <title>.
  const hover = svg("g", { class: "chart-hover" });
  points.forEach((sample, i) => {
    const at = chart.x(when(sample));
    const left = i === 0 ? chart.plot.left : (at + chart.x(when(points[i - 1]))) / 2;
    const right = i === points.length - 1 ? chart.plot.right : (at + chart.x(when(points[i + 1]))) / 2;
    const lines = series.map((s) => `${s.label}: ${sample[s.key] == null ? t("dash") : format(sample[s.key])}`);
    hover.append(svg("rect", {
      x: left.toFixed(1), y: chart.plot.top, width: Math.max(1, right - left).toFixed(1),
      height: chart.plot.bottom - chart.plot.top,
    }, title([timeText(when(sample)), ...lines].join("\n"))));
  });
  chart.root.append(hover);
  return chart.root;
}

/** Bars per hour, failed at the bottom, the other outcomes above. */
function barChart({ hours, width, yLabel, label }) {
  const from = hours[0].hour;
  const to = hours[hours.length - 1].hour + HOUR_MS;
  const [top, step] = niceScale(Math.max(...hours.map((h) => h.failed + h.other)));
  const chart = frame({ width, from, to, top, step, format: (v) => formatNumber(v), yLabel, label });
  const slot = (chart.plot.right - chart.plot.left) / Math.max(1, (to - from) / HOUR_MS);
  const barWidth = Math.min(40, Math.max(1, slot * 0.8));
  const bars = svg("g", { class: "chart-bars" });
  for (const hour of hours) {
    const x = chart.x(hour.hour) + (slot - barWidth) / 2;
    const base = chart.y(0);
    const failedTop = chart.y(hour.failed);
    const allTop = chart.y(hour.failed + hour.other);
    const text = [`${timeText(hour.hour)}–${timeText(hour.hour + HOUR_MS, { timeOnly: true })}`,
      `${t("history.otherOutcomes")}: ${formatNumber(hour.other)}`,
      `${t("history.failed")}: ${formatNumber(hour.failed)}`];
    bars.append(svg("g", { class: "chart-bar" }, title(text.join("\n")),
      hour.failed ? svg("rect", { class: "bar-failed", x: x.toFixed(1), width: barWidth.toFixed(1),
        y: failedTop.toFixed(1), height: (base - failedTop).toFixed(1) }) : null,
      hour.other ? svg("rect", { class: "bar-other", x: x.toFixed(1), width: barWidth.toFixed(1),
        y: allTop.toFixed(1), height: (failedTop - allTop).toFixed(1) }) : null));
  }
  chart.root.append(bars);
  return chart.root;
}

function legend(items) {
  return el("ul", { class: "chart-legend" }, items.map(([cls, text]) =>
    el("li", {}, el("span", { class: `legend-mark ${cls}`, "aria-hidden": "true" }), text)));
}

/** The same figures as a table: visually hidden until the reader asks for the tables. */
function table(id, caption, headers, rows) {
  return el("div", { class: history.tables ? "table-wrap history-table" : "table-wrap history-table visually-hidden",
    id },
  el("table", { class: "table" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: i ? "num" : null }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell, i) => el(i ? "td" : "th", {
      class: i ? "num" : null, scope: i ? null : "row", "data-label": headers[i],
    }, cell)))))));
}

function figure(key, chart, legendItems, tableView) {
  return el("figure", { class: "chart-figure", id: `history-${key}` },
    el("figcaption", {}, t(`history.${key}`)), chart, legendItems, tableView);
}

// ---------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------

/** The width of one chart: the section's, or a third of it where the charts stand side by side (app.css). */
function chartWidth() {
  const box = $("#history-charts");
  const style = getComputedStyle(box);
  const columns = style.gridTemplateColumns === "none" ? 1 : style.gridTemplateColumns.split(" ").length;
  const gap = parseFloat(style.columnGap) || 0;
  return Math.max(260, Math.floor((box.clientWidth - gap * (columns - 1)) / columns));
}

function renderHistory() {
  const box = $("#history-charts");
  $("#history-table-toggle").hidden = !(history.samples && history.samples.length);
  $("#history-table-toggle").textContent = t(history.tables ? "history.hideTables" : "history.showTables");
  $("#history-table-toggle").setAttribute("aria-pressed", String(history.tables));
  if (history.error) {
    fill(box, el("p", { class: "alert", role: "alert" }, errorText(history.error)));
    return;
  }
  if (!history.samples) {
    fill(box, el("p", { class: "muted" }, t("loading")));
    return;
  }
  const samples = history.samples;
  if (!samples.length) {
    fill(box, el("p", { class: "empty history-empty", id: "history-empty" }, t("history.empty")));
    return;
  }
  // Drawn anew each time (a chart has nothing to keep), at the width it is shown.
  const width = chartWidth();
  const first = timeText(when(samples[0]));
  const last = timeText(when(samples[samples.length - 1]));
  const label = (key) => t("history.chartLabel", { chart: t(`history.${key}`), from: first, to: last });
  const rows = lastOfEachHour(samples).reverse();

  const pinsChart = lineChart({
    samples, width, bytes: false, yLabel: t("history.axisPins"), label: label("pins"),
    series: [{ key: "pins", label: t("summary.count"), class: "line-pins" }],
  });
  const pinsTable = table("history-pins-table", t("history.pinsTable"), [t("history.time"), t("summary.count")],
    rows.map((s) => [timeText(when(s)), formatNumber(s.pins)]));

  const storageMax = [...samples].reverse().find((s) => s.storage_max != null);
  const sizeChart = lineChart({
    samples, width, bytes: true, yLabel: t("history.axisBytes"), label: label("size"),
    series: [{ key: "repo_size", label: t("history.repoSize"), class: "line-repo" },
      { key: "pins_size", label: t("history.pinsSize"), class: "line-pins" }],
  });
  const sizeLegend = el("div", {},
    legend([["line-repo", t("history.repoSize")], ["line-pins", t("history.pinsSize")]]),
    storageMax ? el("p", { class: "muted small chart-note" },
      t("history.storageMax", { size: formatBytes(storageMax.storage_max) })) : null);
  const sizeTable = table("history-size-table", t("history.sizeTable"),
    [t("history.time"), t("history.repoSize"), t("history.pinsSize"), t("history.storageMaxColumn")],
    rows.map((s) => [timeText(when(s)), formatBytes(s.repo_size), formatBytes(s.pins_size),
      formatBytes(s.storage_max)]));

  const hours = tasksPerHour(samples);
  const tasksChart = hours.length ? barChart({ hours, width, yLabel: t("history.axisTasks"), label: label("tasks") })
    : el("p", { class: "empty chart-empty", id: "history-no-tasks" }, t("history.noTasks"));
  const tasksLegend = hours.length
    ? legend([["bar-other", t("history.otherOutcomes")], ["bar-failed", t("history.failed")]]) : null;
  const tasksTable = hours.length ? table("history-tasks-table", t("history.tasksTable"),
    [t("history.hour"), t("history.otherOutcomes"), t("history.failed")],
    hours.slice().reverse().map((h) => [`${timeText(h.hour)}–${timeText(h.hour + HOUR_MS, { timeOnly: true })}`,
      formatNumber(h.other), formatNumber(h.failed)])) : null;

  box.replaceChildren(
    figure("pins", pinsChart, legend([["line-pins", t("summary.count")]]), pinsTable),
    figure("size", sizeChart, sizeLegend, sizeTable),
    figure("tasks", tasksChart, tasksLegend, tasksTable));
}

/**
 * The period's samples: all of them at the first look and once an hour
 * (the server thins out old ones), in between only those from the last one
 * on (a month is some 3,500 samples, 700 kB; a minute adds one).
 */
async function loadHistory() {
  const start = Date.now() - RANGES[history.range] * HOUR_MS;
  const known = history.samples && history.samples.length && Date.now() - history.loadedAt < HOUR_MS
    ? history.samples : null;
  const since = known ? known[known.length - 1].at : new Date(start).toISOString();
  try {
    const data = await getJSON(withQuery("/api/history", { since }));
    if (known) {
      // The last one again, perhaps rewritten within its second: the new answer's stands.
      const older = known.filter((sample) => sample.at < since && when(sample) >= start);
      history.samples = older.concat(data.samples);
    } else {
      history.samples = data.samples;
      history.loadedAt = Date.now();
    }
    history.error = null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error; // the poller says the connection is lost, and tries again
    history.error = error;
  }
  renderHistory();
  return true;
}

export function setupHistory() {
  const range = $("#history-range");
  range.value = history.range;
  range.addEventListener("change", () => {
    history.range = range.value in RANGES ? range.value : "day";
    history.samples = null;
    renderHistory();
    history.poller.wake();
  });
  $("#history-table-toggle").addEventListener("click", () => {
    history.tables = !history.tables;
    renderHistory();
  });
  onLanguageChange(renderHistory);
  let width = 0;
  new ResizeObserver(() => {
    const now = $("#history-charts").clientWidth;
    if (now !== width && history.samples) renderHistory();
    width = now;
  }).observe($("#history-charts"));
  renderHistory();
  history.poller = new Poller(loadHistory, { interval: REFRESH_MS, hiddenInterval: 300000, maxInterval: 600000 });
  history.poller.start();
}
