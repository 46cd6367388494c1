// Customer import progress: fills the progress bar from the WebSocket events of this
// job and reloads the page (which shows the counts) when the import has finished.
"use strict";
(function () {
  const section = document.getElementById("import-job");
  if (!section || !window.callcenter) return;
  const job = section.dataset.job;
  const bar = document.getElementById("import-progress");
  const text = document.getElementById("import-progress-text");

  function show(done, total) {
    bar.max = Math.max(total, 1);
    bar.value = done;
    text.textContent = done + " / " + total;
  }

  function finishedIfSo() {
    // The import may have ended before the socket opened: ask once.
    window.callcenter.api("GET", "/api/v1/customer-imports/" + job).then(function (r) {
      if (r.data && r.data.state !== "running") location.reload();
    });
  }

  window.callcenter.on("customer_import.progress", function (event) {
    if (event.job === job) show(event.rows_done, event.rows_total);
  });
  for (const type of ["customer_import.finished", "customer_import.failed"]) {
    window.callcenter.on(type, function (event) {
      if (event.job === job) location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", finishedIfSo);
})();
