// The broadcaster's login on the pages that need an account: a token from
// POST /api/v1/session kept for the tab (common.js session), checked with
// GET /api/v1/session when the page opens, ended by DELETE on logging out.
import { $, api, el, say, session } from "./common.js";

// Shows the login form in #login (or checks the token kept); calls
// onReady(user) once logged in.  #whoami gets the user and a log-out button.
export async function requireLogin(onReady) {
  const box = $("login");
  if (session.token()) {
    try {
      const me = await api("GET", "/api/v1/session", undefined, { auth: true });
      return ready(me.user, onReady);
    } catch (e) {
      session.clear();
    }
  }
  const error = el("p", { className: "error", role: "alert", hidden: true });
  const user = el("input", { id: "login-user", name: "user", autocomplete: "username", required: true });
  const password = el("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const button = el("button", { type: "submit" }, "Log in");
  const form = el(
    "form",
    { className: "login", "aria-labelledby": "login-h" },
    el("h2", { id: "login-h" }, "Log in with your account"),
    error,
    el("p", {}, el("label", { for: "login-user" }, "User name"), user),
    el("p", {}, el("label", { for: "login-password" }, "Password"), password),
    el("p", {}, button),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!user.value.trim() || !password.value) {
      say(error, "Enter your user name and password.", "error");
      return;
    }
    button.disabled = true;
    try {
      const r = await api("POST", "/api/v1/session", { user: user.value.trim(), password: password.value });
      session.save(r.token, r.user);
      password.value = "";
      box.replaceChildren();
      box.hidden = true;
      ready(r.user, onReady);
    } catch (e) {
      say(error, e.status === 401 ? "Wrong user name or password." : e.message, "error");
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  box.replaceChildren(form);
  box.hidden = false;
  user.focus();
}

function ready(user, onReady) {
  const who = $("whoami");
  const out = el("button", { type: "button", className: "link", id: "logout" }, "Log out");
  out.addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/session", undefined, { auth: true });
    } catch (e) {
      // the token ends on the server anyway when it expires
    }
    session.clear();
    location.reload();
  });
  who.replaceChildren("Logged in as ", el("strong", {}, user), " ", out);
  who.hidden = false;
  onReady(user);
}
