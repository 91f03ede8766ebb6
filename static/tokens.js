// The pins page's "Tokens" section: the pinning service's access tokens,
// one per device or client. A new token is shown once, here, with the
// line that gives it to a Kubo; the list shows each token's name, when it
// was made and last used, and revokes one at a time.

import {
  $, ApiError, copyButton, el, errorText, fill, getJSON, onLanguageChange, Poller, postJSON, t, timeElement, toast,
} from "./common.js";

const state = { tokens: null, error: null, made: null, revoking: null };

function endpoint() {
  return `${window.location.origin}/psa`;
}

async function load() {
  try {
    state.tokens = (await getJSON("/api/tokens")).tokens;
    state.error = null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    state.error = error;
  }
  render();
}

async function create(event) {
  event.preventDefault();
  const input = $("#token-name");
  try {
    const answer = await postJSON("/api/tokens", { name: input.value.trim() });
    state.made = answer;
    input.value = "";
  } catch (error) {
    toast(error, "error");
  }
  poller.wake();
}

async function revoke(name) {
  try {
    await postJSON("/api/tokens/revoke", { name });
    toast(() => t("tokens.revoked", { name }));
    if (state.made && state.made.name === name) state.made = null;
  } catch (error) {
    toast(error, "error");
  }
  state.revoking = null;
  poller.wake();
}

function madeView() {
  const made = state.made;
  const service = made.name.replace(/[^A-Za-z0-9_-]+/g, "-");
  const line = `ipfs pin remote service add ${service} ${endpoint()} ${made.token}`;
  return [
    el("p", {}, t("tokens.made", { name: made.name })),
    el("p", { class: "token-secret" }, el("code", { id: "token-value" }, made.token), copyButton(made.token)),
    el("p", { class: "muted" }, t("tokens.kuboLine")),
    el("p", {}, el("code", { id: "token-kubo-line" }, line), copyButton(line)),
    el("button", { type: "button", class: "button small", id: "token-made-done",
      onclick: () => { state.made = null; render(); } }, t("tokens.done")),
  ];
}

function tokenRow(token) {
  const confirming = state.revoking === token.name;
  return el("tr", { "data-key": `token-${token.name}`, "data-token": token.name },
    el("td", { "data-label": t("tokens.col.name") }, token.name),
    el("td", { "data-label": t("tokens.col.created") }, timeElement(token.created_at)),
    el("td", { "data-label": t("tokens.col.lastUsed") },
      token.last_used_at ? timeElement(token.last_used_at, { ago: true })
        : el("span", { class: "muted" }, t("tokens.never"))),
    el("td", { "data-label": t("tokens.col.actions") }, confirming
      ? [el("button", { type: "button", class: "button small danger", "data-action": "revoke-yes",
        onclick: () => revoke(token.name) }, t("tokens.revokeYes", { name: token.name })),
      " ",
      el("button", { type: "button", class: "button small", onclick: () => { state.revoking = null; render(); } },
        t("tokens.keep"))]
      : el("button", { type: "button", class: "button small", "data-action": "revoke",
        onclick: () => { state.revoking = token.name; render(); } }, t("tokens.revoke"))));
}

function render() {
  fill($("#tokens-endpoint"), endpoint());
  const made = $("#token-made");
  made.hidden = !state.made;
  fill(made, ...(state.made ? madeView() : []));
  const empty = $("#tokens-empty");
  if (state.error) {
    fill($("#tokens-body"));
    empty.hidden = false;
    empty.textContent = errorText(state.error);
    return;
  }
  if (!state.tokens) return;
  fill($("#tokens-body"), ...state.tokens.map(tokenRow));
  empty.hidden = state.tokens.length > 0;
  empty.textContent = t("tokens.none");
}

// The list refreshes now and then: "last used" moves while a client pins.
const poller = new Poller(load, { interval: 5000, hiddenInterval: 30000, maxInterval: 60000 });
$("#token-form").addEventListener("submit", create);
onLanguageChange(render);
poller.start();
