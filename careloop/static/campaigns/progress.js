/* Live progress of a campaign over its websocket. Counts only: no names, no numbers pass here. */
(function () {
  "use strict";
  var el = document.getElementById("campaign-progress");
  if (!el) return;
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";

  function set(field, value) {
    el.querySelectorAll('[data-field="' + field + '"]').forEach(function (node) {
      node.textContent = value === null || value === undefined ? "—" : value;
    });
  }

  function list(name, rows) {
    var ul = el.querySelector('[data-list="' + name + '"]');
    if (!ul) return;
    ul.textContent = "";
    if (!rows.length) {
      var empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "—";
      ul.appendChild(empty);
    }
    rows.forEach(function (row) {
      var li = document.createElement("li");
      var strong = document.createElement("strong");
      strong.textContent = row.count;
      li.textContent = row.label + ": ";
      li.appendChild(strong);
      ul.appendChild(li);
    });
  }

  function apply(p) {
    ["pending", "in_progress", "done", "failed", "skipped", "total", "percent", "reach_rate", "state_label"].forEach(function (f) { set(f, p[f]); });
    set("finished", p.done + p.failed + p.skipped);
    var bar = el.querySelector('[data-field="bar"]');
    if (bar) bar.style.width = p.percent + "%";
    el.querySelector('[role="progressbar"]').setAttribute("aria-valuenow", p.percent);
    list("failed_by_reason", p.failed_by_reason);
    list("skipped_by_reason", p.skipped_by_reason);
    el.setAttribute("data-state", p.state);
  }

  function connect(delay) {
    var ws = new WebSocket(scheme + location.host + el.getAttribute("data-ws"));
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type === "campaign.progress") apply(data.progress);
    };
    ws.onclose = function (event) {
      if (event.code >= 4000) return;  /* refused: not logged in or not allowed */
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  connect(1000);
})();
