// The login form. Without JavaScript it posts as a plain form; with it, the
// answer comes back as JSON so that the server's message (a wrong password,
// too many attempts) is shown in place.

import { $, ApiError, errorText, initPage, onLanguageChange, PAGE_HEADERS, t } from "./common.js";

const params = new URLSearchParams(window.location.search);

/** A path on this console to go to after logging in; never another site (the server's rule). */
function safeNext(target) {
  if (!target || !target.startsWith("/") || target.startsWith("//") || /[\\\u0000-\u001f]/.test(target)) {
    return "/pins";
  }
  return target;
}

const next = safeNext(params.get("next"));
let message = params.get("error") ? () => t("login.wrong") : null;

function showError() {
  const box = $("#login-error");
  box.hidden = !message;
  box.textContent = message ? message() : "";
}

async function submit(event) {
  event.preventDefault();
  const form = $("#login-form");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch("/login", {
      method: "POST",
      headers: { ...PAGE_HEADERS, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.assign(next);
      return;
    }
    if (response.status === 401) {
      message = () => t("login.wrong");
    } else {
      const error = new ApiError(response.status, await response.json().catch(() => null));
      message = () => errorText(error);
    }
  } catch (error) {
    message = () => t("error.network");
  } finally {
    button.disabled = false;
  }
  showError();
  $("#login-password").select();
}

initPage("title.login");
$("#login-next").value = next;
$("#login-form").addEventListener("submit", submit);
onLanguageChange(showError);
showError();
