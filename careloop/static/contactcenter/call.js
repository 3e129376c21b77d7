/* Live call panel and screen pops over the contact-center websockets. No phone numbers pass here. */
(function () {
  "use strict";
  if (window.ccCallJs) return;
  window.ccCallJs = true;
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";

  function fmt(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function watch(el) {
    if (el.ccWatched) return;  /* per element: htmx may swap in a fresh one for the same call */
    el.ccWatched = true;
    var state = el.querySelector(".cc-state");
    var duration = el.querySelector(".cc-duration");
    var hangups = el.querySelectorAll(".cc-hangup");
    var rating = el.querySelector(".cc-rating");
    var answeredAt = null, ended = false, timer = null;
    var ws = new WebSocket(scheme + location.host + el.getAttribute("data-ws"));
    ws.onmessage = function (msg) {
      if (!document.body.contains(el)) { ws.close(); return; }
      var data = JSON.parse(msg.data);
      if (data.type !== "call.update") return;
      var call = data.call;
      state.textContent = call.state_label;
      state.setAttribute("data-state", call.state);
      answeredAt = call.answered_at ? new Date(call.answered_at) : null;
      ended = call.state === "ended";
      if (rating) {
        rating.textContent = call.rating_label || "";
        rating.setAttribute("data-rating-status", call.rating_status || "");
      }
      if (ended) {
        hangups.forEach(function (form) { form.hidden = true; });
        duration.textContent = call.duration !== null ? fmt(call.duration) : "";
        if (call.recordings.length && !el.querySelector("audio")) {
          var list = el.querySelector(".cc-recordings");
          call.recordings.forEach(function (rid) {
            var a = document.createElement("audio");
            a.controls = true; a.preload = "none"; a.src = "/cc/recordings/" + rid + "/";
            list.appendChild(a);
          });
        }
      }
    };
    timer = setInterval(function () {
      if (answeredAt && !ended) duration.textContent = fmt((Date.now() - answeredAt) / 1000);
      if (!document.body.contains(el)) { clearInterval(timer); ws.close(); }
    }, 1000);
  }

  function scan() {
    document.querySelectorAll(".cc-call[data-call-id]").forEach(watch);
  }

  function agent() {
    var el = document.getElementById("cc-agent");
    if (!el) return;
    var ws = new WebSocket(scheme + location.host + el.getAttribute("data-ws"));
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type === "screen.pop" && data.url && data.url.charAt(0) === "/") {
        /* A new tab when the browser allows it; else a banner with the link, so the page the
           nurse is working on (an unsaved form) is never replaced. */
        if (!window.open(data.url, "_blank")) {
          var link = document.createElement("a");
          link.href = data.url;
          link.target = "_blank";
          link.textContent = el.getAttribute("data-label");
          el.textContent = "";
          el.appendChild(link);
          el.hidden = false;
          el.className = "cc-screen-pop";
        }
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () { scan(); agent(); });
  document.addEventListener("htmx:afterSettle", scan);
})();
