// The status page's live updates: the agent pushes the dashboard's HTML as
// Server-Sent Events (GET /live); this swaps it in, keeps the incidents the reader
// opened open, and reconnects when the agent restarts. No library, no build step.
(function () {
  "use strict";
  var dash = document.getElementById("dash");
  var conn = document.getElementById("conn");
  var win = dash.getAttribute("data-window") || "15";
  var es = null, retry = null, updates = 0;

  function state(s, text) {
    conn.setAttribute("data-state", s);
    conn.textContent = text;
  }

  function connect() {
    if (retry) { clearTimeout(retry); retry = null; }
    if (es) es.close();
    es = new EventSource("/live?window=" + encodeURIComponent(win));
    es.addEventListener("open", function () { state("live", "live"); });
    es.addEventListener("dashboard", function (ev) {
      var open = [];
      dash.querySelectorAll("details[open]").forEach(function (d) { open.push(d.id); });
      dash.innerHTML = ev.data;
      open.forEach(function (id) {
        var d = document.getElementById(id);
        if (d) d.open = true;
      });
      updates++;
      dash.setAttribute("data-updates", String(updates));
      state("live", "live");
    });
    es.addEventListener("error", function () {
      // The browser retries by itself after a dropped stream; after a refused one
      // (the agent is restarting, or too many pages are open) it gives up: retry.
      state("reconnecting", "reconnecting to the agent…");
      if (es.readyState === EventSource.CLOSED && !retry) {
        retry = setTimeout(connect, 2000);
      }
    });
  }

  document.querySelectorAll("a[data-window]").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      win = a.getAttribute("data-window");
      document.querySelectorAll("a[data-window]").forEach(function (b) {
        b.classList.toggle("on", b === a);
      });
      history.replaceState(null, "", "/?window=" + encodeURIComponent(win));
      connect();
    });
  });
  connect();
})();
