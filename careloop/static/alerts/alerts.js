// Highlight the answers that raised an alert through a rule (the questionnaire's own abnormal
// options are already marked by surveys/_answers.html).
(function () {
  "use strict";
  var sheet = document.getElementById("answers");
  if (!sheet) return;
  var keys = (sheet.getAttribute("data-alert-keys") || "").split(" ").filter(Boolean);
  keys.forEach(function (key) {
    var row = sheet.querySelector('tr[data-key="' + key + '"]');
    if (row) row.classList.add("rule-alert");
  });
})();
