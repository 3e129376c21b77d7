"""The declarative IVR flow document (``careloop-flow/1``): model, validation, templates.

A flow is JSON an administrator can edit without code: named nodes of a few types, each
saying where to go next. The format is documented with examples in docs/engine.md and
docs/flows/. :func:`load_flow` validates the whole document up front and reports every
problem with its JSON path, so a broken flow is refused before it answers a single call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careloop.engine.schedule import Calendar, ScheduleError, Window

FLOW_FORMAT = "careloop-flow/1"
NODE_TYPES = (
    "say",
    "play",
    "menu",
    "gather",
    "switch",
    "time",
    "set",
    "http",
    "record",
    "route",
    "transfer",
    "hangup",
)
PROMPT_KINDS = ("text", "file", "digits", "silence", "tone", "prompt")
DTMF_KEYS = set("0123456789*#")
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")

# Which keys of each node type name another node
NEXT_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("next",),
    "play": ("next",),
    "menu": ("on_failure",),
    "gather": ("next", "on_failure"),
    "switch": ("default",),
    "time": ("open", "closed", "holiday", "default"),
    "set": ("next",),
    "http": ("next", "on_error"),
    "record": ("next",),
    "route": ("on_timeout",),
    "transfer": ("next", "on_failure"),
    "hangup": (),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("say", "next"),
    "play": ("next",),
    "menu": ("say", "options"),
    "gather": ("say", "var", "next"),
    "switch": ("value", "cases"),
    "time": (),
    "set": ("next",),
    "http": ("url", "var", "next"),
    "record": ("var", "next"),
    "route": (),
    "transfer": ("target",),
    "hangup": (),
}


class FlowError(ValueError):
    """The flow document is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class FlowDocument:
    """A validated flow."""

    id: str
    version: int
    start: str
    nodes: dict[str, dict[str, Any]]
    name: str = ""
    voice: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    prompts: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def setting(self, node: dict[str, Any], key: str, default: Any) -> Any:
        """A node's own value, else the flow's ``settings``, else *default*."""
        if key in node:
            return node[key]
        return self.settings.get(key, default)


def _check_prompt(value: Any, where: str, prompts: dict[str, Any], errors: list[str]) -> None:
    if isinstance(value, str):
        return
    items = value if isinstance(value, list) else [value]
    if not items:
        errors.append(f"{where}: empty prompt")
    for i, item in enumerate(items):
        path = f"{where}[{i}]" if isinstance(value, list) else where
        if isinstance(item, str):
            continue
        if not isinstance(item, dict):
            errors.append(f"{path}: a prompt item is a string or an object")
            continue
        kinds = [k for k in PROMPT_KINDS if k in item]
        if len(kinds) != 1:
            errors.append(f"{path}: a prompt item needs exactly one of {', '.join(PROMPT_KINDS)}")
            continue
        kind = kinds[0]
        if kind == "silence" and not (
            isinstance(item["silence"], int) and 0 < item["silence"] <= 60000
        ):
            errors.append(f"{path}.silence: milliseconds between 1 and 60000")
        if kind == "tone" and not isinstance(item["tone"], dict):
            errors.append(f"{path}.tone: an object {{freq, ms}}")
        if kind == "prompt" and item["prompt"] not in prompts:
            errors.append(f"{path}.prompt: no prompt named {item['prompt']!r}")
        if kind in ("text", "file", "digits") and not isinstance(item[kind], str):
            errors.append(f"{path}.{kind}: must be a string")


def _check_number(
    node: dict[str, Any], key: str, where: str, errors: list[str], *, low: float, high: float
) -> None:
    if key in node and (
        isinstance(node[key], bool)
        or not isinstance(node[key], int | float)
        or not low <= node[key] <= high
    ):
        errors.append(f"{where}.{key}: a number between {low} and {high}")


def validate_flow(doc: Any) -> list[str]:
    """Every problem in *doc* (empty when valid)."""
    errors: list[str] = []
    if not isinstance(doc, dict):
        return ["a flow is a JSON object"]
    if doc.get("format") != FLOW_FORMAT:
        errors.append(f"format: must be {FLOW_FORMAT!r}")
    if not isinstance(doc.get("id"), str) or not _ID_RE.match(doc.get("id", "")):
        errors.append("id: letters, digits, '-', '_' or '.', at most 64")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append("version: a positive integer")
    nodes = doc.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        errors.append("nodes: an object of named nodes")
        return errors
    if doc.get("start") not in nodes:
        errors.append(f"start: {doc.get('start')!r} is not a node")
    prompts = doc.get("prompts", {})
    if not isinstance(prompts, dict):
        errors.append("prompts: an object of named prompts")
        prompts = {}
    for name, prompt in prompts.items():
        _check_prompt(prompt, f"prompts.{name}", prompts, errors)
    calendars = doc.get("calendars", {})
    if not isinstance(calendars, dict):
        errors.append("calendars: an object of named calendars")
        calendars = {}
    for name, cal in calendars.items():
        try:
            Calendar.from_dict(cal if isinstance(cal, dict) else {})
        except ScheduleError as exc:
            errors.append(f"calendars.{name}: {exc}")
    settings = doc.get("settings", {})
    if not isinstance(settings, dict):
        errors.append("settings: an object")
    for node_id, node in nodes.items():
        where = f"nodes.{node_id}"
        if not _ID_RE.match(str(node_id)):
            errors.append(f"{where}: bad node name")
        if not isinstance(node, dict):
            errors.append(f"{where}: a node is an object")
            continue
        ntype = node.get("type")
        if ntype not in NODE_TYPES:
            errors.append(f"{where}.type: one of {', '.join(NODE_TYPES)}")
            continue
        for key in REQUIRED_KEYS[ntype]:
            if key not in node:
                errors.append(f"{where}: {ntype} needs {key!r}")
        if ntype == "play" and "say" not in node and "file" not in node:
            errors.append(f"{where}: play needs 'file' or 'say'")
        for key in NEXT_KEYS[ntype]:
            if key in node and node[key] not in nodes:
                errors.append(f"{where}.{key}: no node named {node[key]!r}")
        for key in ("say", "invalid", "no_input", "goodbye"):
            if key in node:
                _check_prompt(node[key], f"{where}.{key}", prompts, errors)
        for key in ("max_attempts", "max_digits", "min_digits"):
            _check_number(node, key, where, errors, low=1, high=64)
        for key in ("timeout", "first_digit_timeout", "inter_digit_timeout", "silence_timeout"):
            _check_number(node, key, where, errors, low=0.1, high=600)
        _check_number(node, "max_duration", where, errors, low=1, high=3600)
        if ntype == "menu":
            options = node.get("options")
            if not isinstance(options, dict) or not options:
                errors.append(f"{where}.options: an object key -> node")
            else:
                for key, target in options.items():
                    if key not in DTMF_KEYS:
                        errors.append(f"{where}.options: {key!r} is not a phone key")
                    target_id = target.get("next") if isinstance(target, dict) else target
                    if target_id not in nodes:
                        errors.append(f"{where}.options.{key}: no node named {target_id!r}")
                    if isinstance(target, dict) and not isinstance(target.get("set", {}), dict):
                        errors.append(f"{where}.options.{key}.set: an object")
        if ntype == "gather":
            if "pattern" in node:
                try:
                    re.compile(node["pattern"])
                except (re.error, TypeError):
                    errors.append(f"{where}.pattern: not a regular expression")
            if node.get("min_digits", 1) > node.get("max_digits", 32):
                errors.append(f"{where}: min_digits > max_digits")
            if (
                not isinstance(node.get("terminators", "#"), str)
                or not set(node.get("terminators", "#")) <= DTMF_KEYS
            ):
                errors.append(f"{where}.terminators: phone keys")
        if ntype == "switch":
            cases = node.get("cases")
            if not isinstance(cases, dict):
                errors.append(f"{where}.cases: an object value -> node")
            else:
                for value, target in cases.items():
                    if target not in nodes:
                        errors.append(f"{where}.cases.{value}: no node named {target!r}")
            if "default" not in node:
                errors.append(f"{where}: switch needs 'default'")
        if ntype == "time":
            if "calendar" in node and node["calendar"] not in calendars:
                errors.append(f"{where}.calendar: no calendar named {node['calendar']!r}")
            rules = node.get("rules")
            if rules is None and "calendar" not in node:
                errors.append(f"{where}: time needs 'calendar' (hours) or 'rules'")
            if rules is not None:
                if not isinstance(rules, list):
                    errors.append(f"{where}.rules: a list")
                else:
                    for i, rule in enumerate(rules):
                        if not isinstance(rule, dict):
                            errors.append(f"{where}.rules[{i}]: an object")
                            continue
                        try:
                            Window.from_dict(rule)
                        except ScheduleError as exc:
                            errors.append(f"{where}.rules[{i}]: {exc}")
                        if rule.get("next") not in nodes:
                            errors.append(
                                f"{where}.rules[{i}].next: no node named {rule.get('next')!r}"
                            )
                if "default" not in node:
                    errors.append(f"{where}: time with rules needs 'default'")
            elif "calendar" in node and ("open" not in node or "closed" not in node):
                errors.append(f"{where}: time with a calendar needs 'open' and 'closed'")
        if ntype == "set":
            if not isinstance(node.get("vars", {}), dict):
                errors.append(f"{where}.vars: an object")
            increment = node.get("increment", [])
            if not isinstance(increment, list) or not all(isinstance(v, str) for v in increment):
                errors.append(f"{where}.increment: a list of variable names")
        if ntype == "http":
            if node.get("method", "POST") not in ("GET", "POST"):
                errors.append(f"{where}.method: GET or POST")
            url = node.get("url", "")
            if not isinstance(url, str) or not (
                url.startswith("/") or url.startswith(("http://", "https://"))
            ):
                errors.append(f"{where}.url: an absolute http(s) URL or a path on the application")
        if ntype == "transfer" and node.get("mode", "bridge") not in ("refer", "bridge"):
            errors.append(f"{where}.mode: refer or bridge")
        if ntype == "route" and not any(k in node for k in ("queue", "agent", "data")):
            errors.append(f"{where}: route needs 'queue', 'agent' or 'data'")
    errors += _unreachable(doc, nodes)
    return errors


def _targets(node: dict[str, Any]) -> list[str]:
    ntype = node.get("type", "")
    out = [node[k] for k in NEXT_KEYS.get(ntype, ()) if isinstance(node.get(k), str)]
    if ntype == "menu" and isinstance(node.get("options"), dict):
        out += [t.get("next") if isinstance(t, dict) else t for t in node["options"].values()]
    if ntype == "switch" and isinstance(node.get("cases"), dict):
        out += list(node["cases"].values())
    if ntype == "time" and isinstance(node.get("rules"), list):
        out += [r.get("next") for r in node["rules"] if isinstance(r, dict)]
    return [t for t in out if isinstance(t, str)]


def _unreachable(doc: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
    start = doc.get("start")
    if start not in nodes:
        return []
    seen = {start}
    stack = [start]
    while stack:
        node = nodes.get(stack.pop())
        if not isinstance(node, dict):
            continue
        for target in _targets(node):
            if target in nodes and target not in seen:
                seen.add(target)
                stack.append(target)
    return [f"nodes.{n}: unreachable from start" for n in nodes if n not in seen]


def load_flow(doc: Any) -> FlowDocument:
    """Validate and build a :class:`FlowDocument`; raises :class:`FlowError` listing problems."""
    errors = validate_flow(doc)
    if errors:
        raise FlowError(errors)
    return FlowDocument(
        id=doc["id"],
        version=doc["version"],
        start=doc["start"],
        nodes=doc["nodes"],
        name=doc.get("name", ""),
        voice=doc.get("voice"),
        settings=doc.get("settings", {}),
        calendars={k: Calendar.from_dict(v) for k, v in doc.get("calendars", {}).items()},
        prompts=doc.get("prompts", {}),
        raw=doc,
    )


def load_flow_file(path: Path) -> FlowDocument:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FlowError([f"{path}: {exc}"]) from exc
    return load_flow(doc)


def lookup(variables: dict[str, Any], path: str) -> Any:
    """``a.b.c`` in nested dicts (``None`` when any step is missing)."""
    value: Any = variables
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def render_text(template: str, variables: dict[str, Any]) -> str:
    """Replace ``{{ name.path }}`` with the variable's value (booleans as true/false)."""

    def replace(match: re.Match[str]) -> str:
        value = lookup(variables, match.group(1))
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _TEMPLATE_RE.sub(replace, template)


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Templates inside strings, lists and objects; a string that is exactly one template keeps its type."""
    if isinstance(value, str):
        match = _TEMPLATE_RE.fullmatch(value.strip())
        if match:
            found = lookup(variables, match.group(1))
            return found if found is not None else ""
        return render_text(value, variables)
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    return value
