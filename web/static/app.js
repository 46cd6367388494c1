// Every page's small runtime: CSRF-aware fetch for the JSON API, the live WebSocket
// (/api/v1/ws) that later features subscribe to with callcenter.on(type, fn) (and
// callcenter.on("socket.open", fn) to resynchronise after each (re)connect), and toasts:
// those the server rendered (data-autoshow) are shown at load, callcenter.toast(text,
// level) shows one from a script. Bootstrap's bundle (window.bootstrap) is loaded first.
"use strict";
(function () {
  const handlers = new Map();
  let retryMs = 1000;

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function api(method, path, body) {
    const init = {method: method, headers: {"X-CSRF-Token": csrfToken()},
                  credentials: "same-origin"};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const data = response.headers.get("content-type") === "application/json"
      ? await response.json() : null;
    return {status: response.status, data: data};
  }

  function on(type, handler) {
    if (!handlers.has(type)) handlers.set(type, []);
    handlers.get(type).push(handler);
  }

  function setStatus(connected) {
    const status = document.getElementById("live-status");
    if (!status) return;
    status.textContent = connected ? status.dataset.connected : status.dataset.disconnected;
    status.dataset.state = connected ? "connected" : "disconnected";
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/api/v1/ws");
    socket.onopen = function () {
      retryMs = 1000;
      setStatus(true);
      // Events sent before the socket (re)opened are lost: a page that follows
      // something live asks for its state again on "socket.open".
      for (const handler of handlers.get("socket.open") || []) handler({type: "socket.open"});
    };
    socket.onmessage = function (message) {
      const event = JSON.parse(message.data);
      for (const handler of handlers.get(event.type) || []) handler(event);
      for (const handler of handlers.get("*") || []) handler(event);
    };
    socket.onclose = function (close) {
      setStatus(false);
      if (close.code === 1008) return;  // refused: logged out; a reload shows the login page
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  function showToast(element) {
    const corner = document.getElementById("toasts");
    if (corner && element.parentElement !== corner) corner.append(element);
    element.addEventListener("hidden.bs.toast", function () { element.remove(); });
    window.bootstrap.Toast.getOrCreateInstance(element, {delay: 6000}).show();
  }

  // A toast built from text (never HTML): level is success, info, warning or danger.
  function toast(text, level) {
    const corner = document.getElementById("toasts");
    const element = document.createElement("div");
    element.className = "toast align-items-center border-0 text-bg-" + (level || "success");
    element.setAttribute("role", level === "danger" ? "alert" : "status");
    element.setAttribute("aria-atomic", "true");
    const row = document.createElement("div");
    row.className = "d-flex";
    const body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close btn-close-white me-2 m-auto";
    close.dataset.bsDismiss = "toast";
    close.setAttribute("aria-label", corner ? corner.dataset.closeLabel : "");
    row.append(body, close);
    element.append(row);
    showToast(element);
    return element;
  }

  window.callcenter = {api: api, on: on, connect: connect, csrfToken: csrfToken,
                       toast: toast};
  document.addEventListener("DOMContentLoaded", function () {
    for (const element of document.querySelectorAll(".toast[data-autoshow]")) {
      showToast(element);
    }
    if (document.getElementById("live-status")) connect();
  });
})();
