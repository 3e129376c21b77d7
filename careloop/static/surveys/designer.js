/* Questionnaire designer (surveys/edit.html).
 *
 * The form posts one JSON textarea (#id_definition); this script renders an editor for it and writes
 * every change back, so the server (careloop/surveys/schema.py) stays the only judge of validity and
 * the page still works as a plain JSON form without the script. Labels come translated from the
 * server in #designer-texts; the script has no UI text of its own.
 * Element ids follow dq-<question index>-<field> (e.g. dq-0-text, dq-1-opt-0-label) for tests. */
(function () {
  "use strict";

  var root = document.querySelector("[data-designer]");
  var textarea = document.getElementById("id_definition");
  if (!root || !textarea) return;
  var jsonError = document.getElementById("json-error");
  var T = JSON.parse(document.getElementById("designer-texts").textContent);
  var issues = JSON.parse(document.getElementById("designer-issues-by-index").textContent) || {};

  var COMMON = ["key", "type", "text", "required", "help", "show_if"];
  var TYPE_FIELDS = {
    single: ["options"],
    multiple: ["options"],
    number: ["min", "max", "unit", "integer", "alert_below", "alert_above"],
    text: ["max_length"],
    date: [],
    rating: ["scale", "scored", "alert_below", "alert_above"],
    yes_no: ["labels", "score", "alert"]
  };
  var ORDERED = ["number", "rating", "date"];
  var state = null;

  // --- small helpers ---------------------------------------------------------------------------

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      if (name === "text") node.textContent = props[name];
      else if (name === "dataset") Object.assign(node.dataset, props[name]);
      else node[name] = props[name];
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function labelled(text, input, cls) {
    return el("label", { className: cls || "" }, [document.createTextNode(text), input]);
  }

  function checkbox(text, input) {
    return el("label", { className: "check" }, [input, document.createTextNode(text)]);
  }

  function sync() {
    textarea.value = JSON.stringify(state, null, 2);
    if (jsonError) jsonError.hidden = true;
  }

  function setOrDelete(obj, name, value) {
    if (value === "" || value === null || value === undefined) delete obj[name];
    else obj[name] = value;
  }

  // A number, or the text as typed so the server can report it rather than it vanishing.
  function parseNumber(text) {
    if (text.trim() === "") return null;
    var n = Number(text);
    return isNaN(n) ? text : n;
  }

  function isChoice(q) { return q && (q.type === "single" || q.type === "multiple"); }

  function nextKey() {
    var used = {};
    state.questions.forEach(function (q) { used[q.key] = true; });
    for (var n = state.questions.length + 1; ; n++) if (!used["q" + n]) return "q" + n;
  }

  function nextOptionValue(q) {
    var used = {};
    q.options.forEach(function (o) { used[o.value] = true; });
    for (var n = q.options.length + 1; ; n++) if (!used[String(n)]) return String(n);
  }

  function defaultConditionValue(source) {
    if (isChoice(source)) return source.options.length ? source.options[0].value : "";
    if (source.type === "yes_no") return true;
    if (source.type === "rating") return (source.scale && source.scale.min) || 0;
    if (source.type === "number") return 0;
    if (source.type === "date") return new Date().toISOString().slice(0, 10);
    return "";
  }

  function dependants(key) {
    return state.questions.filter(function (q) { return q.show_if && q.show_if.key === key; });
  }

  // --- structure changes -----------------------------------------------------------------------

  function newQuestion() {
    return {
      key: nextKey(), type: "single", text: "", required: true,
      options: [{ value: "1", label: "" }, { value: "2", label: "" }]
    };
  }

  function changeType(q, type) {
    Object.keys(q).forEach(function (name) {
      if (COMMON.indexOf(name) === -1 && TYPE_FIELDS[type].indexOf(name) === -1) delete q[name];
    });
    q.type = type;
    if (isChoice(q) && !Array.isArray(q.options)) {
      q.options = [{ value: "1", label: "" }, { value: "2", label: "" }];
    }
    if (type === "rating" && !q.scale) q.scale = { min: 1, max: 5 };
    // Conditions on this question must fit its new type.
    dependants(q.key).forEach(function (d) {
      d.show_if = { key: q.key, op: "eq", value: defaultConditionValue(q) };
    });
  }

  function structural() {
    issues = {};  // server errors are tied to positions that just changed
    render();
  }

  // --- editors for each part of a question -----------------------------------------------------

  function textField(obj, name, label, id, cls, onChange) {
    var input = el("input", { type: "text", id: id, value: obj[name] == null ? "" : obj[name] });
    input.addEventListener("input", function () {
      var old = obj[name];
      setOrDelete(obj, name, input.value);
      if (onChange) onChange(old, input.value);
      sync();
    });
    return labelled(label, input, cls);
  }

  function numberField(obj, name, label, id, after) {
    var input = el("input", { type: "number", step: "any", id: id, value: obj[name] == null ? "" : obj[name] });
    input.addEventListener("input", function () {
      setOrDelete(obj, name, parseNumber(input.value));
      if (after) after();
      sync();
    });
    return labelled(label, input);
  }

  function flagField(obj, name, label, id, keepFalse) {
    var input = el("input", { type: "checkbox", id: id, checked: !!obj[name] });
    input.addEventListener("change", function () {
      if (input.checked || keepFalse) obj[name] = input.checked;
      else delete obj[name];
      sync();
    });
    return checkbox(label, input);
  }

  // Fields kept in a sub-object (scale, labels, score); the sub-object goes when empty.
  function subNumber(q, group, name, label, id) {
    var holder = q[group] || {};
    return numberField(holder, name, label, id, function () {
      if (Object.keys(holder).length) q[group] = holder; else delete q[group];
    });
  }

  function subText(q, group, name, label, id) {
    var holder = q[group] || {};
    return textField(holder, name, label, id, "", function () {
      if (Object.keys(holder).length) q[group] = holder; else delete q[group];
    });
  }

  function optionsEditor(q, i) {
    var rows = q.options.map(function (o, j) {
      var id = "dq-" + i + "-opt-" + j;
      var value = el("input", { type: "text", id: id + "-value", value: o.value || "" });
      value.addEventListener("input", function () {
        var old = o.value;
        o.value = value.value;
        dependants(q.key).forEach(function (d) {  // keep conditions pointing at the renamed value
          if (Array.isArray(d.show_if.value)) {
            d.show_if.value = d.show_if.value.map(function (v) { return v === old ? o.value : v; });
          } else if (d.show_if.value === old) d.show_if.value = o.value;
        });
        sync();
      });
      var label = el("input", { type: "text", id: id + "-label", value: o.label || "" });
      label.addEventListener("input", function () { o.label = label.value; sync(); });
      var score = el("input", { type: "number", step: "any", className: "score", id: id + "-score", value: o.score == null ? "" : o.score });
      score.addEventListener("input", function () { setOrDelete(o, "score", parseNumber(score.value)); sync(); });
      var dtmf = el("input", { type: "text", className: "dtmf", maxLength: 1, id: id + "-dtmf", value: o.dtmf || "", placeholder: String((j + 1) % 10) });
      dtmf.addEventListener("input", function () { setOrDelete(o, "dtmf", dtmf.value.trim()); sync(); });
      var alert = el("input", { type: "checkbox", id: id + "-alert", checked: !!o.alert });
      alert.addEventListener("change", function () { if (alert.checked) o.alert = true; else delete o.alert; sync(); });
      var remove = el("button", { type: "button", className: "link", id: id + "-remove", text: T.remove });
      remove.addEventListener("click", function () { q.options.splice(j, 1); render(); });
      return el("tr", {}, [value, label, score, dtmf, alert, remove].map(function (c) { return el("td", {}, [c]); }));
    });
    var head = el("tr", {}, [T.value, T.label, T.score, T.keypad, T.alert, ""].map(function (t) { return el("th", { text: t }); }));
    var add = el("button", { type: "button", id: "dq-" + i + "-add-option", text: "+ " + T.add_option });
    add.addEventListener("click", function () {
      q.options.push({ value: nextOptionValue(q), label: "" });
      render();
      var fresh = document.getElementById("dq-" + i + "-opt-" + (q.options.length - 1) + "-label");
      if (fresh) fresh.focus();
    });
    return el("div", {}, [
      el("div", { className: "muted", text: T.options }),
      el("table", { className: "dq-options" }, [el("thead", {}, [head]), el("tbody", {}, rows)]),
      add
    ]);
  }

  function typeEditor(q, i) {
    var p = "dq-" + i + "-";
    if (isChoice(q)) return optionsEditor(q, i);
    if (q.type === "number") {
      return el("div", { className: "dq-row" }, [
        numberField(q, "min", T.min, p + "min"), numberField(q, "max", T.max, p + "max"),
        textField(q, "unit", T.unit, p + "unit"),
        numberField(q, "alert_below", T.alert_below, p + "alert_below"),
        numberField(q, "alert_above", T.alert_above, p + "alert_above"),
        flagField(q, "integer", T.integer, p + "integer")
      ]);
    }
    if (q.type === "rating") {
      return el("div", { className: "dq-row" }, [
        subNumber(q, "scale", "min", T.scale_min, p + "scale_min"),
        subNumber(q, "scale", "max", T.scale_max, p + "scale_max"),
        subText(q, "scale", "min_label", T.min_label, p + "min_label"),
        subText(q, "scale", "max_label", T.max_label, p + "max_label"),
        numberField(q, "alert_below", T.alert_below, p + "alert_below"),
        numberField(q, "alert_above", T.alert_above, p + "alert_above"),
        flagField(q, "scored", T.scored, p + "scored")
      ]);
    }
    if (q.type === "yes_no") {
      var alert = el("select", { id: p + "alert" }, [
        el("option", { value: "", text: T.none }), el("option", { value: "yes", text: T.yes }),
        el("option", { value: "no", text: T.no })
      ]);
      alert.value = q.alert || "";
      alert.addEventListener("change", function () { setOrDelete(q, "alert", alert.value); sync(); });
      return el("div", { className: "dq-row" }, [
        subText(q, "labels", "yes", T.yes_label, p + "yes_label"),
        subText(q, "labels", "no", T.no_label, p + "no_label"),
        subNumber(q, "score", "yes", T.yes_score, p + "yes_score"),
        subNumber(q, "score", "no", T.no_score, p + "no_score"),
        labelled(T.alert_on, alert)
      ]);
    }
    if (q.type === "text") {
      return el("div", { className: "dq-row" }, [numberField(q, "max_length", T.max_length, p + "max_length")]);
    }
    return null;
  }

  function conditionValueEditor(q, source, id) {
    var cond = q.show_if;
    var editor;
    if (isChoice(source)) {
      editor = el("select", { id: id, multiple: cond.op === "in" },
        source.options.map(function (o) { return el("option", { value: o.value, text: o.label || o.value }); }));
      var wanted = Array.isArray(cond.value) ? cond.value : [cond.value];
      Array.prototype.forEach.call(editor.options, function (opt) { opt.selected = wanted.indexOf(opt.value) !== -1; });
      editor.addEventListener("change", function () {
        var picked = Array.prototype.filter.call(editor.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
        cond.value = cond.op === "in" ? picked : picked[0];
        sync();
      });
    } else if (source.type === "yes_no") {
      editor = el("select", { id: id }, [el("option", { value: "true", text: T.yes }), el("option", { value: "false", text: T.no })]);
      editor.value = cond.value === false ? "false" : "true";
      editor.addEventListener("change", function () { cond.value = editor.value === "true"; sync(); });
    } else if (cond.op === "in") {
      // A comma-separated list (numbers stay numbers for number and rating questions).
      editor = el("input", { type: "text", id: id, value: (Array.isArray(cond.value) ? cond.value : []).join(", ") });
      editor.addEventListener("input", function () {
        cond.value = editor.value.split(/[,，、]/).map(function (s) { return s.trim(); })
          .filter(function (s) { return s !== ""; })
          .map(function (s) { return source.type === "number" || source.type === "rating" ? parseNumber(s) : s; });
        sync();
      });
    } else {
      var kind = source.type === "date" ? "date" : (source.type === "number" || source.type === "rating" ? "number" : "text");
      editor = el("input", { type: kind, id: id, value: cond.value == null ? "" : cond.value });
      if (kind === "number") editor.step = "any";
      editor.addEventListener("input", function () {
        cond.value = kind === "number" ? parseNumber(editor.value) : editor.value;
        sync();
      });
    }
    return editor;
  }

  function conditionEditor(q, i) {
    var p = "dq-" + i + "-cond-";
    var earlier = state.questions.slice(0, i);
    var keySelect = el("select", { id: p + "key" }, [el("option", { value: "", text: T.always })]);
    earlier.forEach(function (s, j) {
      keySelect.appendChild(el("option", { value: s.key, text: (j + 1) + ". " + (s.text || s.key) }));
    });
    var cond = q.show_if;
    var source = cond && earlier.filter(function (s) { return s.key === cond.key; })[0];
    if (cond && !source) keySelect.appendChild(el("option", { value: cond.key, text: cond.key + " (?)" }));
    keySelect.value = cond ? cond.key : "";
    keySelect.addEventListener("change", function () {
      var picked = earlier.filter(function (s) { return s.key === keySelect.value; })[0];
      if (picked) q.show_if = { key: picked.key, op: "eq", value: defaultConditionValue(picked) };
      else delete q.show_if;
      render();
    });
    var parts = [labelled(T.show_if, keySelect)];
    if (cond && source) {
      var ops = Object.keys(T.ops).filter(function (op) {
        return ORDERED.indexOf(source.type) !== -1 || ["gt", "gte", "lt", "lte"].indexOf(op) === -1;
      });
      var opSelect = el("select", { id: p + "op" }, ops.map(function (op) { return el("option", { value: op, text: T.ops[op] }); }));
      opSelect.value = cond.op;
      opSelect.addEventListener("change", function () {
        var wasList = cond.op === "in";
        cond.op = opSelect.value;
        if (cond.op === "in" && !wasList) cond.value = [cond.value];
        if (cond.op !== "in" && wasList) cond.value = cond.value.length ? cond.value[0] : defaultConditionValue(source);
        render();
      });
      parts.push(labelled("", opSelect));
      parts.push(labelled("", conditionValueEditor(q, source, p + "value")));
    }
    return el("div", { className: "dq-row dq-cond" }, parts);
  }

  function card(q, i) {
    var p = "dq-" + i + "-";
    var found = issues[String(i)] || [];
    var box = el("div", { className: "dq" + (found.length ? " has-error" : ""), id: "dq-" + i, dataset: { index: i } });

    var buttons = [
      ["up", "↑", T.move_up, i > 0, function () { var a = state.questions; a.splice(i - 1, 0, a.splice(i, 1)[0]); }],
      ["down", "↓", T.move_down, i < state.questions.length - 1, function () { var a = state.questions; a.splice(i + 1, 0, a.splice(i, 1)[0]); }],
      ["remove", "✕", T.remove, true, function () { state.questions.splice(i, 1); }]
    ].map(function (b) {
      var button = el("button", { type: "button", id: p + b[0], text: b[1], title: b[2], disabled: !b[3] });
      button.setAttribute("aria-label", b[2]);
      button.addEventListener("click", function () { b[4](); structural(); });
      return button;
    });
    box.appendChild(el("div", { className: "dq-head" }, [el("span", { className: "dq-title", text: T.question + " " + (i + 1) })].concat(buttons)));
    if (found.length) {
      box.appendChild(el("ul", { className: "dq-errors" }, found.map(function (m) { return el("li", { text: m }); })));
    }

    var typeSelect = el("select", { id: p + "type" }, Object.keys(T.types).map(function (t) {
      return el("option", { value: t, text: T.types[t] });
    }));
    typeSelect.value = q.type;
    typeSelect.addEventListener("change", function () { changeType(q, typeSelect.value); render(); });
    var key = textField(q, "key", T.key, p + "key", "", function (old, now) {
      dependants(old).forEach(function (d) { d.show_if.key = now; });
    });
    var text = el("textarea", { id: p + "text", rows: 2, value: q.text || "" });
    text.addEventListener("input", function () { q.text = text.value; sync(); });
    box.appendChild(el("div", { className: "dq-row" }, [
      labelled(T.text, text, "grow"), labelled(T.type, typeSelect), key,
      flagField(q, "required", T.required, p + "required", true)
    ]));
    box.appendChild(el("div", { className: "dq-row" }, [textField(q, "help", T.help, p + "help", "grow")]));
    var specific = typeEditor(q, i);
    if (specific) box.appendChild(specific);
    if (i > 0 || q.show_if) box.appendChild(conditionEditor(q, i));
    return box;
  }

  function render() {
    root.textContent = "";
    if (!state.questions.length) root.appendChild(el("p", { className: "muted", id: "no-questions", text: T.no_questions }));
    state.questions.forEach(function (q, i) { root.appendChild(card(q, i)); });
    var add = el("button", { type: "button", id: "add-question", text: "+ " + T.add_question });
    add.addEventListener("click", function () {
      state.questions.push(newQuestion());
      structural();
      document.getElementById("dq-" + (state.questions.length - 1) + "-text").focus();
    });
    root.appendChild(el("p", {}, [add]));
    sync();
  }

  // --- start, and edits made directly in the JSON text -----------------------------------------

  function load(text) {
    try {
      var parsed = JSON.parse(text);
      if (!parsed || !Array.isArray(parsed.questions)) throw new Error("no question list");
      if (!parsed.questions.every(function (q) { return q && typeof q === "object" && !Array.isArray(q); })) {
        throw new Error("bad question");
      }
      state = parsed;
      return true;
    } catch (e) {
      if (jsonError) { jsonError.textContent = T.bad_json; jsonError.hidden = false; }
      var details = document.getElementById("json-editor");
      if (details) details.open = true;
      return false;
    }
  }

  textarea.addEventListener("change", function () {
    if (load(textarea.value)) structural();
  });
  if (load(textarea.value)) render();
})();
