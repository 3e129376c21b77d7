// Follow-up screens: show the call-back time only for "call back", add plan steps without a reload.
(function () {
  function syncOutcome(form) {
    var picked = form.querySelector('input[name="outcome"]:checked');
    var value = picked ? picked.value : "";
    var callback = form.querySelector("[data-callback]");
    if (callback) callback.hidden = value !== "call_back";
    var survey = form.querySelector("[data-survey]");
    if (survey) survey.classList.toggle("muted", value !== "" && value !== "reached");
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-outcome-form]");
    if (form) syncOutcome(form);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-step]");
    if (!button) return;
    var prefix = button.getAttribute("data-add-step");
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.getElementById(prefix + "-empty");
    var body = document.getElementById(prefix + "-body");
    var index = parseInt(total.value, 10);
    body.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, index));
    total.value = index + 1;
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-outcome-form]").forEach(syncOutcome);
  });
})();
