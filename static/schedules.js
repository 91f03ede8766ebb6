// The Schedules section of the task console: every schedule with its next
// run and how its last run went; add, edit, enable or disable, run now,
// delete (GET/POST /api/schedules, POST /api/schedules/ID[/run], DELETE).

import {
  $, ApiError, el, errorText, fill, getJSON, loadSiteInfo, onLanguageChange, PAGE_HEADERS, Poller, postJSON, t,
  taskTypeLabel, timeElement, toast,
} from "./common.js";
import { statusBadge } from "./taskview.js";

const TYPES = ["pin_sync", "repo_gc", "pin_recover", "repo_verify", "task_cleanup", "name_follow"];
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
// The options each type takes: the form's field for each.
const OPTIONS = { repo_gc: ["above_percent"], task_cleanup: ["days"], name_follow: ["name", "keep"] };

let schedules = [];
let editing = null;          // the schedule being edited, or null to add one
let formError = null;        // the last refusal, said again in the other language

const section = $("#schedules");

function label(key, control) {
  return el("label", { class: "field" }, el("span", { "data-i18n": key }, t(key)), control);
}

function option(value, key) {
  return el("option", { value, "data-i18n": key }, t(key));
}

const form = el("form", { id: "schedule-form", class: "schedule-form", novalidate: true },
  el("h3", { id: "schedule-form-heading" }),
  el("div", { class: "schedule-fields" },
    label("sched.type", el("select", { id: "schedule-type" })),
    label("sched.repeat", el("select", { id: "schedule-kind" },
      option("every", "sched.kind.every"), option("daily", "sched.kind.daily"), option("weekly", "sched.kind.weekly"))),
    label("sched.day", el("select", { id: "schedule-day" }, ...DAYS.map((day) => option(day, `day.${day}`)))),
    label("sched.value", el("input", { id: "schedule-value", type: "text", autocomplete: "off", spellcheck: "false" })),
    label("sched.name", el("input", {
      id: "schedule-name", type: "text", "data-option": "name", autocomplete: "off", spellcheck: "false",
      placeholder: "/ipns/example.org",
    })),
    label("sched.keep", el("input", { id: "schedule-keep", "data-option": "keep", type: "number", min: "1", max: "100" })),
    label("sched.above", el("input", {
      id: "schedule-above", "data-option": "above_percent", type: "number", min: "1", max: "100",
    })),
    label("sched.days", el("input", { id: "schedule-days", "data-option": "days", type: "number", min: "1" }))),
  el("p", { id: "schedule-error", class: "alert", role: "alert", hidden: true }),
  el("div", { class: "actions" },
    el("button", { type: "submit", id: "schedule-save", class: "button primary" }),
    el("button", { type: "button", id: "schedule-cancel-edit", class: "button", hidden: true,
      "data-i18n": "sched.cancelEdit", onclick: () => startEditing(null) }, t("sched.cancelEdit"))));

fill(section,
  el("div", { class: "card-head" }, el("h2", { id: "schedules-heading", "data-i18n": "sched.heading" }, t("sched.heading"))),
  el("div", { class: "table-wrap" }, el("table", { class: "table schedules-table" },
    el("thead", {}, el("tr", {}, ...["col.id", "sched.col.task", "sched.col.when", "sched.col.next", "sched.col.last",
      "sched.col.enabled"].map((key) => el("th", { scope: "col", "data-i18n": key }, t(key))),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden", "data-i18n": "col.actions" }, t("col.actions"))))),
    el("tbody", { id: "schedules-body" }))),
  el("p", { id: "schedules-empty", class: "empty", hidden: true, "data-i18n": "sched.empty" }, t("sched.empty")),
  form);

/** When a schedule runs, in words: "every 6h", "daily at 03:00", "Mondays at 03:00". */
function whenText(spec) {
  const [kind, ...rest] = spec.split(" ");
  if (kind === "every") return t("sched.every", { d: rest[0] });
  if (kind === "daily") return t("sched.daily", { time: rest[0] });
  return t("sched.weekly", { day: t(`day.${rest[0]}`), time: rest[1] });
}

function optionsText(item) {
  const p = item.params || {};
  if (item.task_type === "name_follow") return t("sched.follows", { name: p.name, n: p.keep || 1 });
  if (item.task_type === "repo_gc" && p.above_percent) return t("sched.above.short", { p: p.above_percent });
  if (item.task_type === "task_cleanup" && p.days) return t("sched.days.short", { n: p.days });
  return "";
}

function lastRun(item) {
  if (!item.last_run_at) return t("dash");
  const status = item.last_status;
  const badge = status === "skipped" || status === "error"
    ? el("span", { class: `badge badge-${status === "error" ? "failed" : "cancelled"}` }, t(`sched.status.${status}`))
    : status === "started" ? el("span", { class: "badge" }, t("sched.status.started"))
      : statusBadge({ status, result: null });
  const link = item.last_task_id ? el("a", { href: `/tasks?id=${item.last_task_id}` }, `#${item.last_task_id}`) : null;
  return el("div", { class: "schedule-last" }, timeElement(item.last_run_at, { ago: true }), " ", badge, " ", link,
    item.last_message ? el("div", { class: "muted schedule-message" }, item.last_message) : null);
}

function row(item) {
  return el("tr", { "data-schedule-id": String(item.id) },
    el("td", { class: "num" }, String(item.id)),
    el("td", {}, taskTypeLabel(item.task_type), optionsText(item) ? el("div", { class: "muted" }, optionsText(item)) : null),
    el("td", { class: "schedule-when" }, whenText(item.spec)),
    el("td", { class: "schedule-next" }, item.enabled ? timeElement(item.next_run_at) : t("sched.off")),
    el("td", {}, lastRun(item)),
    el("td", {}, el("input", {
      type: "checkbox", class: "schedule-enabled", checked: item.enabled,
      "aria-label": t("sched.enabledFor", { id: item.id }), onchange: (event) => setEnabled(item, event.target.checked),
    })),
    el("td", {}, el("span", { class: "actions" },
      el("button", { type: "button", class: "button small schedule-run", onclick: () => runNow(item) }, t("sched.runNow")),
      el("button", { type: "button", class: "button small schedule-edit", onclick: () => startEditing(item) },
        t("sched.edit")),
      el("button", { type: "button", class: "button small schedule-delete", onclick: () => remove(item) },
        t("sched.delete")))));
}

function draw() {
  fill($("#schedules-body"), ...schedules.map(row));
  $("#schedules-empty").hidden = schedules.length > 0;
  $("#schedule-form-heading").textContent = editing ? t("sched.editing", { id: editing.id }) : t("sched.add");
  $("#schedule-save").textContent = editing ? t("sched.save") : t("sched.add");
  $("#schedule-cancel-edit").hidden = !editing;
  const error = $("#schedule-error");
  error.hidden = !formError;
  error.textContent = formError ? errorText(formError) : "";
  showFields();
}

async function fillTypes() {
  const info = await loadSiteInfo();
  const select = $("#schedule-type");
  const chosen = select.value;
  fill(select, ...TYPES.filter((type) => type !== "pin_recover" || info.cluster)
    .map((type) => el("option", { value: type }, taskTypeLabel(type))));
  if (chosen) select.value = chosen;
  showFields();
}

/** Show the fields that apply to the chosen type and repeat. */
function showFields() {
  const type = $("#schedule-type").value;
  const kind = $("#schedule-kind").value;
  for (const input of form.querySelectorAll("[data-option]")) {
    input.closest("label").hidden = !(OPTIONS[type] || []).includes(input.dataset.option);
  }
  $("#schedule-day").closest("label").hidden = kind !== "weekly";
  $("#schedule-value").placeholder = kind === "every" ? "6h" : "03:00";
}

function startEditing(item) {
  editing = item;
  formError = null;
  form.reset();
  if (item) {
    const [kind, ...rest] = item.spec.split(" ");
    $("#schedule-type").value = item.task_type;
    $("#schedule-kind").value = kind;
    if (kind === "weekly") $("#schedule-day").value = rest[0];
    $("#schedule-value").value = rest[rest.length - 1];
    for (const input of form.querySelectorAll("[data-option]")) {
      const value = (item.params || {})[input.dataset.option];
      input.value = value == null ? "" : String(value);
    }
    $("#schedule-type").disabled = true;
    $("#schedule-value").focus();
  } else {
    $("#schedule-type").disabled = false;
  }
  draw();
}

function formData() {
  const kind = $("#schedule-kind").value;
  const value = $("#schedule-value").value.trim();
  const data = { [kind]: kind === "weekly" ? `${$("#schedule-day").value} ${value}` : value, params: {} };
  const type = $("#schedule-type").value;
  for (const input of form.querySelectorAll("[data-option]")) {
    if ((OPTIONS[type] || []).includes(input.dataset.option) && input.value.trim() !== "") {
      data.params[input.dataset.option] = input.type === "number" ? Number(input.value) : input.value.trim();
    }
  }
  if (!editing) data.task_type = type;
  return data;
}

async function save(event) {
  event.preventDefault();
  try {
    if (editing) {
      await postJSON(`/api/schedules/${editing.id}`, formData());
      toast(() => t("sched.saved", { id: editing.id }));
    } else {
      const answer = await postJSON("/api/schedules", formData());
      toast(() => t("sched.added", { id: answer.id }));
    }
    startEditing(null);
    poller.wake();
  } catch (error) {
    formError = error;
    draw();
  }
}

async function setEnabled(item, enabled) {
  try {
    await postJSON(`/api/schedules/${item.id}`, { enabled });
  } catch (error) {
    toast(error, "error");
  }
  poller.wake();
}

async function runNow(item) {
  try {
    const answer = await postJSON(`/api/schedules/${item.id}/run`);
    toast(() => t("sched.started", { id: answer.taskId }));
  } catch (error) {
    toast(error, "error");
  }
  poller.wake();
}

async function remove(item) {
  try {
    const response = await fetch(`/api/schedules/${item.id}`, {
      method: "DELETE", headers: PAGE_HEADERS, credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    toast(() => t("sched.deleted", { id: item.id }));
    if (editing && editing.id === item.id) startEditing(null);
  } catch (error) {
    toast(error, "error");
  }
  poller.wake();
}

const poller = new Poller(async () => {
  schedules = (await getJSON("/api/schedules")).schedules || [];
  draw();
}, { interval: 5000 });

form.addEventListener("submit", save);
$("#schedule-type").addEventListener("change", showFields);
$("#schedule-kind").addEventListener("change", showFields);
// The task list and one task's page share the page: the schedules go with the list.
const list = $("#task-list");
const follow = () => { section.hidden = list.hidden; };
new MutationObserver(follow).observe(list, { attributes: true, attributeFilter: ["hidden"] });
follow();
onLanguageChange(() => {
  fillTypes();
  draw();
  poller.wake();
});
fillTypes();
draw();
poller.start();
