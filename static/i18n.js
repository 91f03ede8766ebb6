// The pages' language: their strings (static/strings-en.js, static/strings-zh.js)
// and the translation of messages that the worker stores in English.

import { EN } from "./strings-en.js";
import { ZH } from "./strings-zh.js";

const MESSAGES = { en: EN, zh: ZH };

// Whole messages the worker and the server store in tasks, in English.
const FIXED_MESSAGES_ZH = new Map(Object.entries({
  "Cancelled by the node's operator": "已被节点的管理员取消",
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
  "not pinned or pinned indirectly": "未被固定，或仅被间接固定",
  "Collecting garbage...": "正在进行垃圾回收…",
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
  [/^the list of CIDs to pin is gone \((.*)\)$/, "msg.listGone", ["name"]],
  [/^timed out after (\d+) s \((.*)\)$/s, "msg.timedOut", ["s", "msg"]],
  [/^pin: block was not found locally \(offline\): (.*)$/s, "msg.notFoundOffline", ["detail"]],
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

/**
 * The string for `key` in the current language, with {name} fields filled
 * in. When `n` is 1 and the language has a "KEY#one" form, that is used:
 * "1 line is not a CID", not "1 lines are not CIDs".
 */
export function t(key, values = {}) {
  const table = MESSAGES[current];
  const one = `${key}#one`;
  const template = String(values.n) === "1" && one in table ? table[one]
    : key in table ? table[key] : MESSAGES.en[key] ?? key;
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
