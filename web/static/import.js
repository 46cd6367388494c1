// Customer import: fills the progress bar from the WebSocket events of this job, while
// its sheet is checked and while it is imported, and reloads the page (which then shows
// the preview, or the counts) when the check or the import has ended.
"use strict";
(function () {
  const section = document.getElementById("import-job");
  if (!section || !window.callcenter) return;
  const job = section.dataset.job;
  const state = section.dataset.state;
  const bar = document.getElementById("import-progress");
  const text = document.getElementById("import-progress-text");

  function show(done, total) {
    bar.max = Math.max(total, 1);
    bar.value = done;
    text.textContent = done + " / " + total;
  }

  function endedIfSo() {
    // The check or the import may have ended before the socket opened (or while it was
    // reconnecting), when its event could not reach us: ask at load and at each open.
    window.callcenter.api("GET", "/api/v1/customer-imports/" + job).then(function (r) {
      if (r.data && r.data.state !== state) location.reload();
    });
  }

  for (const type of ["customer_import.checking", "customer_import.progress"]) {
    window.callcenter.on(type, function (event) {
      if (event.job === job) show(event.rows_done, event.rows_total);
    });
  }
  for (const type of ["customer_import.checked", "customer_import.finished",
                      "customer_import.failed"]) {
    window.callcenter.on(type, function (event) {
      if (event.job === job) location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", endedIfSo);
  window.callcenter.on("socket.open", endedIfSo);
})();
