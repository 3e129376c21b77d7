/* Skip logic of a filled questionnaire (surveys/_fill.html), mirroring careloop/surveys/schema.py:
 * a question with data-show-if='{"key","op","value"}' is shown only when the condition holds on the
 * answer of the (earlier, visible) question it names. Hidden questions' inputs are disabled so they
 * are not submitted; the server drops hidden answers anyway. */
(function () {
  "use strict";

  function answerOf(wrapper) {
    var type = wrapper.dataset.type;
    var inputs = wrapper.querySelectorAll("input, textarea, select");
    if (type === "multiple") {
      var ticked = [];
      inputs.forEach(function (i) { if (i.checked) ticked.push(i.value); });
      return ticked.length ? ticked : null;
    }
    if (type === "single" || type === "rating" || type === "yes_no") {
      var picked = null;
      inputs.forEach(function (i) { if (i.checked) picked = i.value; });
      if (picked === null) return null;
      if (type === "rating") return Number(picked);
      if (type === "yes_no") return picked === "yes";
      return picked;
    }
    var text = inputs.length ? inputs[0].value.trim() : "";
    if (text === "") return null;
    if (type === "number") {
      var n = Number(text);
      return isNaN(n) ? null : n;
    }
    return text;  // text, and dates as YYYY-MM-DD (which compare correctly as strings)
  }

  function normalise(type, value) {
    if (type === "number" || type === "rating") return Number(value);
    if (type === "yes_no") return value === true || value === "yes" || value === "true";
    return String(value);
  }

  function holds(cond, type, answer) {
    if (answer === null || answer === undefined) return false;
    var op = cond.op;
    if (type === "multiple") {
      var wanted = op === "in" ? cond.value.map(String) : [String(cond.value)];
      var any = wanted.some(function (v) { return answer.indexOf(v) !== -1; });
      return op === "ne" ? !any : any;
    }
    if (op === "in") {
      return cond.value.map(function (v) { return normalise(type, v); }).indexOf(answer) !== -1;
    }
    var expected = normalise(type, cond.value);
    switch (op) {
      case "eq": return answer === expected;
      case "ne": return answer !== expected;
      case "gt": return answer > expected;
      case "gte": return answer >= expected;
      case "lt": return answer < expected;
      case "lte": return answer <= expected;
    }
    return false;
  }

  function apply(container) {
    // A read-only rendering documents the whole version, conditional questions included.
    if (container.hasAttribute("data-readonly")) return;
    var answers = {};  // answers of visible questions only, in order
    var types = {};
    container.querySelectorAll(".question[data-key]").forEach(function (wrapper) {
      var key = wrapper.dataset.key;
      types[key] = wrapper.dataset.type;
      var show = true;
      if (wrapper.dataset.showIf) {
        var cond = JSON.parse(wrapper.dataset.showIf);
        show = holds(cond, types[cond.key], answers[cond.key]);
      }
      wrapper.hidden = !show;
      wrapper.querySelectorAll("input, textarea, select").forEach(function (i) { i.disabled = !show; });
      answers[key] = show ? answerOf(wrapper) : null;
    });
  }

  function init(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var containers = scope.matches && scope.matches("[data-survey-fill]")
      ? [scope] : scope.querySelectorAll("[data-survey-fill]");
    containers.forEach(function (container) {
      if (container.dataset.skipReady) return;
      container.dataset.skipReady = "1";
      container.addEventListener("change", function () { apply(container); });
      container.addEventListener("input", function () { apply(container); });
      apply(container);
    });
  }

  window.CareLoopSurveys = { init: init, apply: apply };
  init(document);
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
