"""A questionnaire as an automated-call flow (``careloop-flow/1``, docs/engine.md#ivr-flows).

``build_flow(version, hospital=..., department=...)`` makes the flow an automated follow-up call
runs: a greeting that names the hospital and the department and says the call is recorded; the
consent menu ("{{patient_name}}您好……方便请按1，不方便请按2，转人工服务请按0，不希望再接到此类
自动随访电话请按9"); each question the keypad can answer; thanks and goodbye.

* single choice, yes/no and ratings up to 9 → a menu, each option with its keypad digit
  (``schema.keypad_choices``): "……请按1"; the digit is stored in ``a_<key>``;
* multiple choice → a gather of the options' digits ending with #, 0 for none of them;
* numbers (and ratings above 9) → a gather ending with #, with a spoken example
  ("例如三十七点五度，请按3、7、5，以井号键结束"): ``*`` may be pressed for the decimal point,
  and without it a value too large for the question's range is read with the decimal point
  put back (375 → 37.5 for a temperature between 35 and 42);
* free text and dates cannot be keyed in: they are left out and left to the nurse.

Skip logic (``show_if``) becomes ``switch`` nodes on the source question's digit. A condition the
flow cannot decide (on a number, a multiple choice or a question the keypad could not answer) leaves
the question to the nurse too. 0 at any menu (unless 0 is an option) routes the patient to the
follow-up team (``route`` node, queue ``followup``); 9 at the consent menu records the opt-out.
Menus barge in (a key stops the prompt) and nothing flushes what was typed ahead.

The flow sets ``outreach_result`` (``completed``, ``no_consent``, ``to_nurse``, ``opted_out``),
which the dialler copies into ``ContactAttempt.result``. ``answers_from_variables`` turns the
flow's variables back into the answers dict ``record_outcome`` expects.

Every flow built here is checked with the engine's own validator (``careloop.engine.flow``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from careloop.engine.flow import validate_flow
from careloop.outreach.speech import say_integer, say_number
from careloop.surveys import schema
from careloop.surveys.choices import QuestionType

FLOW_PREFIX = "followup"
NURSE_QUEUE = "followup"
UNITS = {
    "°c": "度",
    "℃": "度",
    "mmhg": "毫米汞柱",
    "mmol/l": "毫摩尔每升",
    "kg": "公斤",
    "g": "克",
    "cm": "厘米",
    "次/分": "次每分钟",
    "bpm": "次每分钟",
    "次": "次",
    "天": "天",
    "小时": "小时",
    "分": "分",
    "度": "度",
}
DIGIT_WORDS = "零一二三四五六七八九"


class FlowBuildError(ValueError):
    """The generated flow did not pass the engine's validator (a bug: the errors say where)."""


# --- speaking -----------------------------------------------------------------------------------


def _unit_words(question: dict[str, Any]) -> str:
    unit = str(question.get("unit") or "").strip()
    return UNITS.get(unit.lower(), unit)


def _keys_spoken(digits: str) -> str:
    """ "375" → "3、7、5" (eSpeak reads the digits one by one)."""
    return "、".join("星号" if d == "*" else d for d in digits)


def _option_prompts(pairs: list[tuple[str, str]]) -> str:
    return "，".join(f"{label}请按{digit}" for digit, label in pairs) + "。"


def _choice_labels(question: dict[str, Any]) -> list[tuple[str, str]]:
    """(digit, label) in the order the options are read."""
    qtype = question["type"]
    if qtype in schema.CHOICE_TYPES:
        return [
            (schema.option_dtmf(question, i), str(option.get("label") or option["value"]))
            for i, option in enumerate(question["options"])
        ]
    if qtype == QuestionType.YES_NO:
        labels = question.get("labels") or {}
        return [("1", str(labels.get("yes") or "是")), ("2", str(labels.get("no") or "否"))]
    return []


def _rating_prompt(question: dict[str, Any]) -> str:
    low, high = schema.scale_range(question)
    scale = question.get("scale") or {}
    text = f"请按{low}到{high}打分"
    if scale.get("min_label") and scale.get("max_label"):
        text += f"，{low}分为{scale['min_label']}，{high}分为{scale['max_label']}"
    return text + "。"


def number_example(question: dict[str, Any]) -> Decimal:
    """A plausible value to speak as the example: the middle of the normal range."""
    low = question.get("alert_below", question.get("min"))
    high = question.get("alert_above", question.get("max"))
    if question.get("unit", "").strip().lower() in ("°c", "℃"):
        return Decimal("36.5")
    try:
        low_d = Decimal(str(low)) if low is not None else None
        high_d = Decimal(str(high)) if high is not None else None
    except InvalidOperation:
        low_d = high_d = None
    if low_d is not None and high_d is not None:
        middle = (low_d + high_d) / 2
    else:
        middle = low_d or high_d or Decimal(5)
    if question.get("integer") or question.get("type") == QuestionType.RATING:
        return middle.quantize(Decimal(1))
    return middle.quantize(Decimal("0.1"))


def _number_prompt(question: dict[str, Any]) -> str:
    example = number_example(question)
    if example == example.to_integral_value():
        example = example.quantize(Decimal(1))
    digits = str(example).replace(".", "")
    spoken = say_number(example) + _unit_words(question)
    return f"请用按键输入，例如{spoken}，请按{_keys_spoken(digits)}，以井号键结束。"


# --- building -----------------------------------------------------------------------------------


def keypad_kind(question: dict[str, Any]) -> str:
    """How the keypad answers the question: ``menu``, ``multiple``, ``number`` or ``""``."""
    qtype = question.get("type")
    if qtype == QuestionType.MULTIPLE:
        digits = [schema.option_dtmf(question, i) for i in range(len(question["options"]))]
        return "multiple" if "0" not in digits and all(digits) else ""
    if schema.keypad_choices(question) is not None:
        return "menu"
    if qtype in (QuestionType.NUMBER, QuestionType.RATING):
        return "number"
    return ""


def _condition_digits(
    cond: dict[str, Any], source: dict[str, Any], question: dict[str, Any]
) -> list[str] | None:
    """The source's digits for which ``question`` is shown; None when the flow cannot tell."""
    if keypad_kind(source) != "menu":
        return None
    choices = schema.keypad_choices(source) or {}
    probe_source = {k: v for k, v in source.items() if k != "show_if"}
    probe_question = {**question, "show_if": cond}
    shown = []
    for digit, value in choices.items():
        visible = schema.visible_questions(
            {"questions": [probe_source, probe_question]}, {source["key"]: value}
        )
        if any(q["key"] == question["key"] for q in visible):
            shown.append(digit)
    return shown


def asked_questions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions the flow asks, in order (keypad-answerable, skip logic decidable)."""
    by_key = schema.question_map(definition)
    asked: list[dict[str, Any]] = []
    asked_keys: set[str] = set()
    for question in schema.questions(definition):
        if not keypad_kind(question):
            continue
        cond = question.get("show_if")
        if cond:
            source = by_key.get(cond.get("key"))
            if source is None or source["key"] not in asked_keys:
                continue
            if _condition_digits(cond, source, question) is None:
                continue
        asked.append(question)
        asked_keys.add(question["key"])
    return asked


def _node_name(prefix: str, key: str) -> str:
    return f"{prefix}_{key}"[:64]


def build_flow(
    version: Any,
    *,
    hospital: str,
    department: str,
    step: Any = None,
) -> dict[str, Any]:
    """The automated-call flow of a published questionnaire version (``None``: no questions,
    only the consent and thanks). Raises FlowBuildError if the engine's validator refuses it."""
    definition = version.definition if version is not None else {"questions": []}
    by_key = schema.question_map(definition)
    questions = asked_questions(definition)
    flow_id = (
        f"{FLOW_PREFIX}-q{version.questionnaire_id}-v{version.number}"
        if version is not None
        else f"{FLOW_PREFIX}-consent"
    )
    nodes: dict[str, Any] = {}
    to_nurse = {"next": "to_nurse", "set": {"outreach_result": "to_nurse"}}

    def guard_name(index: int) -> str:
        if index >= len(questions):
            return "thanks"
        question = questions[index]
        if question.get("show_if"):
            return _node_name("if", question["key"])
        return _node_name("q", question["key"])

    nodes["greet"] = {
        "type": "say",
        "say": f"您好，这里是{hospital}{department}随访中心。本次通话将被录音。",
        "barge_in": True,
        "next": "consent",
    }
    nodes["consent"] = {
        "type": "menu",
        "say": "{{patient_name}}您好，我们想通过电话了解您出院后的恢复情况。"
        "现在方便接受随访请按1，不方便请按2，转人工服务请按0，"
        "如不希望再接到此类自动随访电话请按9。",
        "var": "consent",
        "barge_in": True,
        "options": {
            "1": guard_name(0),
            "2": {"next": "not_now", "set": {"outreach_result": "no_consent"}},
            "0": to_nurse,
            "9": {"next": "opt_out", "set": {"outreach_result": "opted_out"}},
        },
        "on_failure": "no_input",
    }
    for index, question in enumerate(questions):
        key = question["key"]
        var = f"a_{key}"
        next_node = guard_name(index + 1)
        cond = question.get("show_if")
        if cond:
            source = by_key[cond["key"]]
            digits = _condition_digits(cond, source, question) or []
            nodes[_node_name("if", key)] = {
                "type": "switch",
                "value": "{{a_" + source["key"] + "}}",
                "cases": {digit: _node_name("q", key) for digit in digits},
                "default": next_node,
            }
        text = str(question.get("text") or "").strip()
        kind = keypad_kind(question)
        if kind == "menu":
            if question["type"] == QuestionType.RATING:
                prompt = f"{text}{_rating_prompt(question)}"
            else:
                prompt = f"{text}{_option_prompts(_choice_labels(question))}"
            choices = schema.keypad_choices(question) or {}
            options: dict[str, Any] = {digit: next_node for digit in choices}
            if "0" not in options:
                options["0"] = to_nurse  # announced once, in the consent prompt
            nodes[_node_name("q", key)] = {
                "type": "menu",
                "say": prompt,
                "var": var,
                "barge_in": True,
                "options": options,
                "on_failure": next_node,
            }
        elif kind == "multiple":
            pairs = _choice_labels(question)
            allowed = "".join(sorted({d for d, _label in pairs}))
            prompt = (
                f"{text}有以下情况请依次按对应的数字，以井号键结束："
                f"{_option_prompts(pairs)}都没有请按0再按井号键。"
            )
            nodes[_node_name("q", key)] = {
                "type": "gather",
                "say": prompt,
                "var": var,
                "barge_in": True,
                "min_digits": 1,
                "max_digits": len(pairs),
                "terminators": "#",
                "pattern": f"0|[{allowed}]{{1,{len(pairs)}}}",
                "next": next_node,
                "on_failure": next_node,
            }
        else:  # number
            nodes[_node_name("q", key)] = {
                "type": "gather",
                "say": f"{text}{_number_prompt(question)}",
                "var": var,
                "barge_in": True,
                "min_digits": 1,
                "max_digits": 8,
                "terminators": "#",
                "pattern": r"[0-9]{1,5}(\*[0-9]{1,2})?",
                "next": next_node,
                "on_failure": next_node,
            }
    nodes["thanks"] = {
        "type": "set",
        "vars": {"outreach_result": "completed"},
        "next": "goodbye",
    }
    nodes["goodbye"] = {
        "type": "hangup",
        "say": "您的回答已记录，感谢您的配合，祝您早日康复，再见。",
    }
    nodes["not_now"] = {"type": "hangup", "say": "好的，我们的护士稍后会再与您联系，再见。"}
    nodes["opt_out"] = {
        "type": "hangup",
        "say": "好的，我们将不再给您拨打自动随访电话，随访护士会通过电话与您联系。再见。",
    }
    nodes["no_input"] = {"type": "hangup", "say": "没有收到您的按键，我们稍后再与您联系，再见。"}
    nodes["to_nurse"] = {"type": "say", "say": "正在为您转接随访护士，请稍候。", "next": "route"}
    nodes["route"] = {
        "type": "route",
        "queue": NURSE_QUEUE,
        "data": {"task": "{{task_id}}"},
        "hold_music": True,
        "timeout": 60,
        "on_timeout": "nurse_busy",
    }
    nodes["nurse_busy"] = {"type": "hangup", "say": "护士正忙，稍后会给您回电，再见。"}
    nodes = {name: node for name, node in nodes.items() if _reachable_from_start(name, nodes)}
    doc = {
        "format": "careloop-flow/1",
        "id": flow_id,
        "version": 1,
        "name": "自动电话随访",
        "voice": "cmn",
        "start": "greet",
        "settings": {"first_digit_timeout": 8, "inter_digit_timeout": 5, "max_attempts": 2},
        "prompts": {"invalid": "输入有误，请重新输入。", "no_input": "没有收到您的按键。"},
        "nodes": nodes,
    }
    errors = validate_flow(doc)
    if errors:
        raise FlowBuildError("; ".join(errors))
    return doc


def _reachable_from_start(name: str, nodes: dict[str, Any]) -> bool:
    from careloop.engine.flow import _targets

    seen, todo = set(), ["greet"]
    while todo:
        current = todo.pop()
        if current in seen or current not in nodes:
            continue
        seen.add(current)
        todo.extend(_targets(nodes[current]))
    return name in seen


# --- answers back -------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"^([0-9]+)(?:\*([0-9]+))?$")


def keyed_number(question: dict[str, Any], digits: str) -> Decimal | None:
    """The number meant by keys such as ``375`` or ``37*5`` (see the module docstring)."""
    match = _NUMBER_RE.match(digits or "")
    if not match:
        return None
    whole, fraction = match.groups()
    value = Decimal(f"{int(whole)}.{fraction}") if fraction else Decimal(int(whole))
    if fraction or question.get("integer") or question.get("type") == QuestionType.RATING:
        return value
    high = question.get("max")
    if high is None:
        return value
    high_d = Decimal(str(high))
    candidate = value
    for _shift in range(2):
        if candidate <= high_d:
            return candidate
        candidate = candidate / 10
    return candidate if candidate <= high_d else value


def answers_from_variables(
    version: Any, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The answers (question key → value, as ``record_outcome`` / ``submit_response`` take them)
    from a finished flow's variables, and the keys of the asked questions left unanswered."""
    if version is None:
        return {}, []
    answers: dict[str, Any] = {}
    unanswered: list[str] = []
    for question in asked_questions(version.definition):
        key = question["key"]
        raw = str(variables.get(f"a_{key}") or "").strip()
        kind = keypad_kind(question)
        value: Any = None
        if raw and kind == "menu":
            value = (schema.keypad_choices(question) or {}).get(raw)
        elif raw and kind == "multiple":
            by_digit = {
                schema.option_dtmf(question, i): option["value"]
                for i, option in enumerate(question["options"])
            }
            value = [] if raw == "0" else [by_digit[d] for d in dict.fromkeys(raw) if d in by_digit]
        elif raw and kind == "number":
            number = keyed_number(question, raw)
            if number is not None:
                value = int(number) if number == number.to_integral_value() else float(number)
        if value is None or value == []:
            if not (kind == "multiple" and value == []):
                unanswered.append(key)
                continue
        answers[key] = value
    return answers, unanswered


def describe_answers(version: Any, answers: dict[str, Any]) -> str:
    """The answers as a nurse reads them: "胸痛：没有；体温：38.6" (for notes)."""
    if version is None:
        return ""
    parts = []
    for question in schema.questions(version.definition):
        key = question["key"]
        if key not in answers:
            continue
        value = answers[key]
        labels = {o["value"]: o.get("label") or o["value"] for o in question.get("options") or []}
        if isinstance(value, bool):
            yes_no = question.get("labels") or {}
            shown = yes_no.get("yes" if value else "no") or ("是" if value else "否")
        elif isinstance(value, list):
            shown = "、".join(str(labels.get(v, v)) for v in value) or "无"
        else:
            shown = str(labels.get(value, value)) + str(question.get("unit") or "")
        parts.append(f"{question.get('text', key)}{shown}")
    return "；".join(parts)


def describe_questions(version: Any, keys: list[str]) -> str:
    if version is None:
        return ""
    by_key = schema.question_map(version.definition)
    return "；".join(str(by_key[k].get("text") or k) for k in keys if k in by_key)


__all__ = [
    "FlowBuildError",
    "answers_from_variables",
    "asked_questions",
    "build_flow",
    "keyed_number",
    "say_integer",
]
