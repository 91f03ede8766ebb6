// The pins page's uploads: files chosen or dropped (a folder keeps its
// paths), sent with their progress, then added to the node by a task.

import {
  $, ApiError, dismissButton, el, errorText, fill, formatBytes, formatNumber, loadSiteInfo, PAGE_HEADERS,
  setTitleProgress, t, toast,
} from "./common.js";
import {
  announceTaskEnd, cancelTask, filesSize, hasProgress, isActive, progressBar, RateMeter, rateText, resultView,
  statusBadge, taskMessage, watchTask,
} from "./taskview.js";

const uploads = [];
let uploadCount = 0;
// What the page gives the uploads: where links open, and what to do when a pin joined the catalogue.
const page = { gateway: () => null, onAdded: () => {} };

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

/** What an upload is called, in the current language. */
function uploadName(upload) {
  if (upload.name) return upload.name;
  const files = upload.files;
  return files.length === 1 && !files[0].webkitRelativePath ? files[0].name
    : directoryName(files) || t("upload.chosen", { n: formatNumber(files.length), size: formatBytes(upload.size) });
}

/**
 * Send one file, or several as one directory (a folder keeps its paths);
 * `limit` is the server's largest upload in bytes (null while unknown).
 */
function startUpload(files, name, pin, limit) {
  const size = files.reduce((sum, file) => sum + file.size, 0);
  const upload = {
    key: `upload-${++uploadCount}`, files, size, name, phase: "sending", sent: 0,
    task: null, error: null, xhr: null, poller: null, meter: new RateMeter(), row: el("li", { class: "upload" }),
  };
  uploads.unshift(upload);
  $("#upload-list").prepend(upload.row);
  if (limit != null && size > limit) {
    // Refused here: the server would only say so after the whole set had been sent.
    failUpload(upload, () => t("upload.tooLarge", { name: uploadName(upload), limit: formatBytes(limit) }));
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
  for (const [header, value] of Object.entries(PAGE_HEADERS)) xhr.setRequestHeader(header, value);
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
      if (body.storage_warning) toast(body.storage_warning, "warn");
      watchUpload(upload, body.taskId);
    } else {
      const error = new ApiError(xhr.status, body);
      failUpload(upload, () => errorText(error));
    }
  });
  xhr.addEventListener("error", () => failUpload(upload, () => t("error.network")));
  xhr.addEventListener("abort", () => failUpload(upload, () => t("upload.aborted")));
  xhr.send(form);
  renderUpload(upload);
}

/** `message`: a function that says why in the current language. */
function failUpload(upload, message) {
  upload.phase = "failed";
  upload.error = message;
  renderUpload(upload);
}

function watchUpload(upload, id) {
  upload.phase = "task";
  upload.task = { id, task_type: "file_upload", status: "pending", progress: 0, total: 0, percentage: 0 };
  upload.poller = watchTask(id, (task) => {
    upload.task = task;
    upload.meter.add(task);
    renderUpload(upload);
    if (isActive(task)) return;
    if (task.status === "completed") page.onAdded();
    announceTaskEnd(task, () => t("upload.what", { name: uploadName(upload) }));
  }, (error) => failUpload(upload, () => errorText(error)));
  renderUpload(upload);
}

function uploadStatus(upload) {
  const task = upload.task;
  if (upload.phase === "failed") return el("p", { class: "alert", role: "alert" }, upload.error());
  if (upload.phase === "sending") return el("p", {}, t("upload.sending", { pct: Math.floor(upload.sent * 100) }));
  if (task.status === "pending") return el("p", {}, t("upload.queued"));
  if (task.status === "running") {
    const rate = rateText(task, upload.meter);
    return el("p", {}, t("upload.adding", { pct: task.percentage }),
      rate ? el("span", { class: "muted" }, ` · ${rate}`) : null);
  }
  if (task.status === "completed") {
    return el("div", { class: "result" }, el("span", {}, statusBadge(task)),
      resultView(task, page.gateway(), { showSize: false }));
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
  const name = uploadName(upload);
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
  const bar = sending || (task ? hasProgress(task) : upload.sent > 0) ? progressBar(barTask, name) : null;
  if (sending) bar.classList.add("sending");
  fill(upload.row,
    el("div", { class: "upload-head" },
      el("span", { class: "upload-name", title: name }, name),
      el("span", { class: "muted upload-size" }, filesSize(upload.size, upload.files.length)),
      task ? el("a", { href: `/tasks?id=${task.id}`, title: t("task.viewInConsole") }, `#${task.id}`) : null,
      el("span", { class: "spacer" }),
      active
        ? el("button", { type: "button", class: "button small", onclick: stop }, t("action.cancel"))
        : dismissButton(dismiss)),
    bar,
    uploadStatus(upload));
}

/** Draw the chosen files and every upload again (the language or the gateway changed). */
export function renderUploads() {
  renderChosen();
  for (const upload of uploads) renderUpload(upload);
}

/** Wire the upload form; `gateway()` says where links open, `onAdded()` runs when an upload is in. */
export function setupUploads({ gateway, onAdded }) {
  Object.assign(page, { gateway, onAdded });
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
      toast(() => t("upload.needFile"), "error");
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
