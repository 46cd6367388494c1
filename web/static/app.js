// The desktop's small runtime: CSRF-aware fetch for the JSON API, and the live
// WebSocket (/api/v1/ws) that later features subscribe to with callcenter.on(type, fn).
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
    socket.onopen = function () { retryMs = 1000; setStatus(true); };
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

  window.callcenter = {api: api, on: on, connect: connect, csrfToken: csrfToken};
  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("live-status")) connect();
  });
})();
