// Every string the pages show, in English and Simplified Chinese, and the
// translation of messages that the worker stores in English.

const MESSAGES = {
  en: {
    "app.name": "IPFSMaster",
    "nav.label": "Main",
    "nav.pins": "Pins",
    "nav.tasks": "Tasks",
    "lang.label": "Language",
    "conn.lost": "Connection lost, retrying…",
    "title.pins": "Pins · IPFSMaster",
    "title.tasks": "Tasks · IPFSMaster",
    "title.task": "Task #{id} · IPFSMaster",

    "status.pending": "Pending",
    "status.running": "Running",
    "status.completed": "Completed",
    "status.failed": "Failed",
    "status.cancelled": "Cancelled",
    "type.pin_sync": "Pin sync",
    "type.file_upload": "File upload",

    "action.cancel": "Cancel",
    "action.retry": "Retry",
    "action.copy": "Copy",
    "action.refresh": "Refresh",
    "action.dismiss": "Dismiss",
    "copy.done": "Copied to the clipboard.",
    "copy.failed": "Could not copy; select it here:",

    "unit.B": "B",
    "duration.ms": "{n} ms",
    "duration.s": "{n} s",
    "duration.min_s": "{a} min {b} s",
    "duration.h_min": "{a} h {b} min",
    "duration.d_h": "{a} d {b} h",
    "duration.min": "{n} min",
    "duration.h": "{n} h",
    "duration.d": "{n} d",
    "rate.items": "{n} items/s",
    "rate.bytes": "{n}/s",
    "eta": "about {d} left",
    "ago": "{d} ago",
    "ago.now": "just now",
    "dash": "—",

    "error.network": "The server cannot be reached.",
    "error.http": "The server answered with status {status}.",
    "task.cancelling": "Task #{id} is stopping…",
    "task.cancelled": "Task #{id} was cancelled.",
    "task.retried": "Started task #{id} to retry #{old}.",
    "task.stopping": "Stopping…",
    "task.waiting": "Waiting for the worker to start…",
    "task.items": "{progress} / {total}",
    "task.viewInConsole": "Open in the task console",

    "notify.label": "Notify me when a long task ends",
    "notify.denied": "This browser blocks notifications from this page.",
    "notify.sync": "Pin sync: {status}",
    "notify.upload": "Upload of {name}: {status}",

    "pins.heading": "Pins",
    "summary.label": "Catalogue summary",
    "summary.count": "Pins",
    "summary.size": "Total size",
    "summary.unsized": "Size unknown",
    "summary.lastSync": "Last sync",
    "summary.never": "Never",
    "summary.lastSyncValue": "#{id} · {ago}",

    "sync.heading": "Sync with the node",
    "sync.intro": "Reads the node's pin list into the catalogue, then looks up the sizes it does not know yet.",
    "sync.button": "Sync now",
    "sync.attached": "A sync was already running; showing its progress.",
    "sync.progress": "{progress} of {total} pins · {pct}%",
    "sync.completed": "Sync completed in {duration}.",
    "sync.failed": "The sync failed.",
    "sync.cancelled": "The sync was cancelled.",
    "sync.errorDetails": "Pins whose size could not be read",
    "result.added": "Added",
    "result.updated": "Updated",
    "result.removed": "Removed",
    "result.unchanged": "Unchanged",
    "result.failed": "Failed",

    "upload.heading": "Add files",
    "upload.drop": "Drop files here, or",
    "upload.choose": "choose files",
    "upload.none": "No file chosen",
    "upload.chosen": "{n} files · {size}",
    "upload.name": "Name (optional)",
    "upload.nameHint": "Used when one file is chosen; otherwise each file keeps its own name.",
    "upload.pin": "Pin after adding",
    "upload.submit": "Upload",
    "upload.needFile": "Choose a file first.",
    "upload.sending": "Sending to the server… {pct}%",
    "upload.queued": "Waiting for the worker…",
    "upload.adding": "Adding to IPFS… {pct}%",
    "upload.pinned": "pinned",
    "upload.notPinned": "not pinned",
    "upload.aborted": "Upload stopped.",

    "search.label": "Search pins",
    "search.placeholder": "Search by CID or name",
    "table.caption": "Pins in the catalogue",
    "col.cid": "CID",
    "col.type": "Type",
    "col.name": "Name",
    "col.size": "Size",
    "col.synced": "Synced",
    "sort.by": "Sort by {col}",
    "pinType.recursive": "recursive",
    "pinType.direct": "direct",
    "pinType.indirect": "indirect",
    "pager.label": "Pages",
    "pager.range": "{from}–{to} of {total}",
    "pager.prev": "Previous",
    "pager.next": "Next",
    "empty.pins": "No pins in the catalogue yet. Press “Sync now” to read them from your node.",
    "empty.search": "No pins match “{q}”.",
    "loading": "Loading…",

    "tasks.heading": "Tasks",
    "filter.label": "Filters",
    "filter.status": "Status",
    "filter.type": "Type",
    "filter.all": "All",
    "tasks.caption": "Background tasks, newest first",
    "col.id": "#",
    "col.status": "Status",
    "col.progress": "Progress",
    "col.times": "Times",
    "col.duration": "Duration",
    "col.actions": "Actions",
    "time.created": "Created",
    "time.started": "Started",
    "time.finished": "Finished",
    "empty.tasks": "No tasks match these filters.",
    "detail.back": "All tasks",
    "detail.heading": "Task #{id}",
    "detail.missing": "There is no task #{id}.",
    "field.type": "Type",
    "field.status": "Status",
    "field.progress": "Progress",
    "field.currentItem": "Current item",
    "field.created": "Created",
    "field.started": "Started",
    "field.finished": "Finished",
    "field.duration": "Duration",
    "field.heartbeat": "Last heartbeat",
    "field.cancelRequested": "Cancel requested",
    "field.pid": "Worker process",
    "field.retryOf": "Retry of",
    "field.params": "Parameters",
    "field.result": "Result",
    "field.resultRaw": "Result as JSON",
    "field.log": "Worker log",
    "log.empty": "The worker has written nothing yet.",

    "msg.cannotReach": "cannot reach the IPFS API at {url}: {reason}",
    "msg.brokeOff": "the IPFS API at {url} broke off {cmd}: {reason}",
    "msg.ipfsFailed": "IPFS {cmd} failed: {msg}",
    "msg.couldNotStart": "could not start the worker: {reason}",
    "msg.internal": "internal error: {detail}",
    "msg.refused": "the IPFS API at {url} refused {cmd}: access denied (check IPFSMASTER_IPFS_AUTH)",
    "msg.unknownCommand": "the IPFS API at {url} does not know {cmd} (HTTP {status}): is it a Kubo RPC API?",
    "msg.midStream": "the IPFS node reported an error mid-stream: {msg}",
    "msg.spoolGone": "the uploaded file is gone ({name})",
    "msg.fetching": "Fetching pins from IPFS...",
    "msg.fetchingCount": "Fetching pins from IPFS... {n}",
  },

  zh: {
    "app.name": "IPFSMaster",
    "nav.label": "主导航",
    "nav.pins": "Pin 列表",
    "nav.tasks": "任务",
    "lang.label": "语言",
    "conn.lost": "连接中断，正在重试…",
    "title.pins": "Pin 列表 · IPFSMaster",
    "title.tasks": "任务 · IPFSMaster",
    "title.task": "任务 #{id} · IPFSMaster",

    "status.pending": "等待中",
    "status.running": "运行中",
    "status.completed": "已完成",
    "status.failed": "失败",
    "status.cancelled": "已取消",
    "type.pin_sync": "Pin 同步",
    "type.file_upload": "文件上传",

    "action.cancel": "取消",
    "action.retry": "重试",
    "action.copy": "复制",
    "action.refresh": "刷新",
    "action.dismiss": "关闭",
    "copy.done": "已复制到剪贴板。",
    "copy.failed": "无法复制，请在此手动选择：",

    "unit.B": "字节",
    "duration.ms": "{n} 毫秒",
    "duration.s": "{n} 秒",
    "duration.min_s": "{a} 分 {b} 秒",
    "duration.h_min": "{a} 小时 {b} 分",
    "duration.d_h": "{a} 天 {b} 小时",
    "duration.min": "{n} 分钟",
    "duration.h": "{n} 小时",
    "duration.d": "{n} 天",
    "rate.items": "每秒 {n} 项",
    "rate.bytes": "{n}/秒",
    "eta": "约剩 {d}",
    "ago": "{d}前",
    "ago.now": "刚刚",
    "dash": "—",

    "error.network": "无法连接服务器。",
    "error.http": "服务器返回状态 {status}。",
    "task.cancelling": "任务 #{id} 正在停止…",
    "task.cancelled": "任务 #{id} 已取消。",
    "task.retried": "已启动任务 #{id} 重试 #{old}。",
    "task.stopping": "正在停止…",
    "task.waiting": "等待后台进程启动…",
    "task.items": "{progress} / {total}",
    "task.viewInConsole": "在任务控制台中查看",

    "notify.label": "长任务结束时通知我",
    "notify.denied": "此浏览器禁止本页面显示通知。",
    "notify.sync": "Pin 同步：{status}",
    "notify.upload": "上传 {name}：{status}",

    "pins.heading": "Pin 列表",
    "summary.label": "目录概览",
    "summary.count": "Pin 数量",
    "summary.size": "总大小",
    "summary.unsized": "大小未知",
    "summary.lastSync": "上次同步",
    "summary.never": "从未同步",
    "summary.lastSyncValue": "#{id} · {ago}",

    "sync.heading": "与节点同步",
    "sync.intro": "读取节点的 Pin 列表写入目录，然后查询尚不知道的大小。",
    "sync.button": "立即同步",
    "sync.attached": "已有同步任务在运行，正在显示其进度。",
    "sync.progress": "{progress} / {total} 个 Pin · {pct}%",
    "sync.completed": "同步完成，用时 {duration}。",
    "sync.failed": "同步失败。",
    "sync.cancelled": "同步已取消。",
    "sync.errorDetails": "无法读取大小的 Pin",
    "result.added": "新增",
    "result.updated": "更新",
    "result.removed": "移除",
    "result.unchanged": "未变",
    "result.failed": "失败",

    "upload.heading": "添加文件",
    "upload.drop": "将文件拖放到此处，或",
    "upload.choose": "选择文件",
    "upload.none": "未选择文件",
    "upload.chosen": "{n} 个文件 · {size}",
    "upload.name": "名称（可选）",
    "upload.nameHint": "仅在选择一个文件时使用；多个文件时各自沿用文件名。",
    "upload.pin": "添加后 Pin",
    "upload.submit": "上传",
    "upload.needFile": "请先选择文件。",
    "upload.sending": "正在发送到服务器… {pct}%",
    "upload.queued": "等待后台进程…",
    "upload.adding": "正在添加到 IPFS… {pct}%",
    "upload.pinned": "已 Pin",
    "upload.notPinned": "未 Pin",
    "upload.aborted": "上传已停止。",

    "search.label": "搜索 Pin",
    "search.placeholder": "按 CID 或名称搜索",
    "table.caption": "目录中的 Pin",
    "col.cid": "CID",
    "col.type": "类型",
    "col.name": "名称",
    "col.size": "大小",
    "col.synced": "同步时间",
    "sort.by": "按{col}排序",
    "pinType.recursive": "递归",
    "pinType.direct": "直接",
    "pinType.indirect": "间接",
    "pager.label": "分页",
    "pager.range": "第 {from}–{to} 条，共 {total} 条",
    "pager.prev": "上一页",
    "pager.next": "下一页",
    "empty.pins": "目录中还没有 Pin。点击“立即同步”从节点读取。",
    "empty.search": "没有与“{q}”匹配的 Pin。",
    "loading": "加载中…",

    "tasks.heading": "任务",
    "filter.label": "筛选",
    "filter.status": "状态",
    "filter.type": "类型",
    "filter.all": "全部",
    "tasks.caption": "后台任务，最新的在前",
    "col.id": "#",
    "col.status": "状态",
    "col.progress": "进度",
    "col.times": "时间",
    "col.duration": "耗时",
    "col.actions": "操作",
    "time.created": "创建",
    "time.started": "开始",
    "time.finished": "结束",
    "empty.tasks": "没有符合筛选条件的任务。",
    "detail.back": "全部任务",
    "detail.heading": "任务 #{id}",
    "detail.missing": "不存在任务 #{id}。",
    "field.type": "类型",
    "field.status": "状态",
    "field.progress": "进度",
    "field.currentItem": "当前项目",
    "field.created": "创建时间",
    "field.started": "开始时间",
    "field.finished": "结束时间",
    "field.duration": "耗时",
    "field.heartbeat": "最近心跳",
    "field.cancelRequested": "请求取消于",
    "field.pid": "后台进程",
    "field.retryOf": "重试自",
    "field.params": "参数",
    "field.result": "结果",
    "field.resultRaw": "结果 JSON",
    "field.log": "后台进程日志",
    "log.empty": "后台进程尚未输出任何内容。",

    "msg.cannotReach": "无法连接 IPFS API（{url}）：{reason}",
    "msg.brokeOff": "IPFS API（{url}）在执行 {cmd} 时中断：{reason}",
    "msg.ipfsFailed": "IPFS {cmd} 失败：{msg}",
    "msg.couldNotStart": "无法启动后台进程：{reason}",
    "msg.internal": "内部错误：{detail}",
    "msg.refused": "IPFS API（{url}）拒绝了 {cmd}：访问被拒绝（请检查 IPFSMASTER_IPFS_AUTH）",
    "msg.unknownCommand": "IPFS API（{url}）不支持 {cmd}（HTTP {status}）：它是 Kubo RPC API 吗？",
    "msg.midStream": "IPFS 节点在传输中途报告错误：{msg}",
    "msg.spoolGone": "上传的文件已不存在（{name}）",
    "msg.fetching": "正在从 IPFS 获取 Pin 列表…",
    "msg.fetchingCount": "正在从 IPFS 获取 Pin 列表… {n}",
  },
};

// Whole messages the worker and the server store in tasks, in English.
const FIXED_MESSAGES_ZH = new Map(Object.entries({
  "worker process exited unexpectedly": "后台进程意外退出",
  "worker process never started": "后台进程未能启动",
  "Manually terminated": "已手动终止",
  "Cancelled": "已取消",
  "Cancelled before it started": "在开始前已取消",
  "Cancelled: the worker did not stop in time and was terminated": "已取消：后台进程未能及时停止，已被强制终止",
  "Worker terminated by a signal": "后台进程被信号终止",
  "Comparing with the catalogue...": "正在与目录比对…",
  "IPFS add finished without giving the file's CID": "IPFS add 已结束，但没有返回文件的 CID",
  "connection refused": "连接被拒绝",
  "timed out": "超时",
  "connection reset": "连接被重置",
  "unknown host": "未知主机",
  "the answer was cut short": "应答被截断",
}));

// Messages with parts: pattern -> key, with the captured parts named.
const PATTERNS = [
  [/^cannot reach the IPFS API at (\S+): (.*)$/s, "msg.cannotReach", ["url", "reason"]],
  [/^the IPFS API at (\S+) broke off (\S+): (.*)$/s, "msg.brokeOff", ["url", "cmd", "reason"]],
  [/^the IPFS API at (\S+) refused (\S+): access denied \(check IPFSMASTER_IPFS_AUTH\)$/, "msg.refused",
    ["url", "cmd"]],
  [/^the IPFS API at (\S+) does not know (\S+) \(HTTP (\d+)\): is it a Kubo RPC API\?$/, "msg.unknownCommand",
    ["url", "cmd", "status"]],
  [/^the IPFS node reported an error mid-stream: (.*)$/s, "msg.midStream", ["msg"]],
  [/^the uploaded file is gone \((.*)\)$/, "msg.spoolGone", ["name"]],
  [/^IPFS (\S+) failed: (.*)$/s, "msg.ipfsFailed", ["cmd", "msg"]],
  [/^could not start the worker: (.*)$/s, "msg.couldNotStart", ["reason"]],
  [/^internal error: (.*)$/s, "msg.internal", ["detail"]],
  [/^Fetching pins from IPFS\.\.\.$/, "msg.fetching", []],
  [/^Fetching pins from IPFS\.\.\. (\d+)$/, "msg.fetchingCount", ["n"]],
];

export const LANGUAGES = ["en", "zh"];

let current = LANGUAGES.includes(document.documentElement.lang) ? document.documentElement.lang : "en";

export function language() {
  return current;
}

export function setCurrentLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "en";
}

/** The string for `key` in the current language, with {name} fields filled in. */
export function t(key, values = {}) {
  const table = MESSAGES[current];
  const template = key in table ? table[key] : MESSAGES.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A message the worker stored (in English), in the current language; unknown ones unchanged. */
export function translateTaskMessage(text) {
  if (text == null || text === "") return "";
  text = String(text);
  if (current === "en") return text;
  for (const [pattern, key, names] of PATTERNS) {
    const match = pattern.exec(text);
    if (match) {
      const values = {};
      names.forEach((name, i) => {
        values[name] = translateTaskMessage(match[i + 1]);
      });
      return t(key, values);
    }
  }
  return FIXED_MESSAGES_ZH.get(text) ?? text;
}

/** Fill every element marked with data-i18n (text) or data-i18n-ATTR (an attribute). */
export function applyTranslations(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const attr of ["placeholder", "title", "aria-label"]) {
    const data = "i18n" + attr.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase());
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      node.setAttribute(attr, t(node.dataset[data]));
    }
  }
}
