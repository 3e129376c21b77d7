"""The questionnaire definition format, and answering it (F3.1, F3.2).

A definition is the JSON stored in ``QuestionnaireVersion.definition``::

    {"questions": [question, ...]}

Each question is an object with:

``key``       identifier, ``[a-z][a-z0-9_]*`` (at most 40 characters), unique in the questionnaire;
              answers are stored under it and web inputs are named ``q_<key>``.
``type``      one of ``choices.QuestionType``: ``single``, ``multiple``, ``number``, ``text``,
              ``date``, ``rating``, ``yes_no``.
``text``      the question as read to the patient (data, so written in Chinese).
``required``  bool, default false. Only enforced while the question is visible (see ``show_if``).
``help``      optional hint shown under the question.
``show_if``   optional skip logic ``{"key": <an earlier question>, "op": <op>, "value": <v>}``;
              ops ``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``, ``in`` (value is a list).
              The question is shown only when the condition holds; a condition on an unanswered
              or hidden question never holds. ``gt``/``gte``/``lt``/``lte`` need a number, rating or
              date question; on a ``multiple`` question ``eq`` means "was ticked", ``ne`` "was not
              ticked" and ``in`` "any of these was ticked". On a ``yes_no`` question the value is a
              JSON boolean.

By type:

``single`` / ``multiple``
    ``options``: 2 to 10 objects ``{"value": str, "label": str, "score": number?, "dtmf": "1"?,
    "alert": bool?}``. ``dtmf`` is the keypad digit the IVR and SMS channels accept for the option;
    it defaults to the option's position (1..9, then 0). ``alert`` marks an abnormal answer.
``number``
    ``min`` / ``max`` (inclusive, optional), ``unit`` (e.g. "°C"), ``integer`` (bool),
    ``alert_below`` / ``alert_above`` (values outside this range are flagged as abnormal).
``rating``
    ``scale``: ``{"min": 0..9, "max": 1..10, "min_label": str?, "max_label": str?}``;
    ``scored``: when true the chosen value counts towards the score; ``alert_below`` /
    ``alert_above`` as for numbers.
``yes_no``
    ``labels``: optional ``{"yes": "有", "no": "没有"}``; ``score``: optional
    ``{"yes": number, "no": number}``; ``alert``: optional ``"yes"`` or ``"no"``.
    Keypad: 1 = yes, 2 = no.
``text``
    ``max_length`` (default 1000).
``date``
    no extra fields; answers are ISO dates.

Cleaned answers (what ``clean_answers`` returns and ``Response.answers`` stores) are JSON values:
``single`` → option value, ``multiple`` → list of option values in option order, ``number`` → int or
float, ``text`` → str, ``date`` → ``"YYYY-MM-DD"``, ``rating`` → int, ``yes_no`` → bool.
``clean_answers`` accepts these as well as the strings a web form or an SMS parser produces, so
cleaning is idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from careloop.core.formats import to_halfwidth
from careloop.surveys.choices import QuestionType

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
ORDERED_OPS = ("gt", "gte", "lt", "lte")
CHOICE_TYPES = (QuestionType.SINGLE, QuestionType.MULTIPLE)
MAX_OPTIONS = 10
DEFAULT_TEXT_LENGTH = 1000
DIGITS = "1234567890"  # default keypad digits by option position

_COMMON_FIELDS = {"key", "type", "text", "required", "help", "show_if"}
_TYPE_FIELDS: dict[str, set[str]] = {
    QuestionType.SINGLE: {"options"},
    QuestionType.MULTIPLE: {"options"},
    QuestionType.NUMBER: {"min", "max", "unit", "integer", "alert_below", "alert_above"},
    QuestionType.TEXT: {"max_length"},
    QuestionType.DATE: set(),
    QuestionType.RATING: {"scale", "scored", "alert_below", "alert_above"},
    QuestionType.YES_NO: {"labels", "score", "alert"},
}
_OPTION_FIELDS = {"value", "label", "score", "dtmf", "alert"}
_YES_WORDS = {"yes", "y", "true", "是", "有"}
_NO_WORDS = {"no", "n", "false", "否", "无", "没有"}


class AnswerError(ValueError):
    """Answers that do not fit the questionnaire; ``errors`` maps question key → message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class DefinitionIssue:
    """One problem in a definition; ``index`` is the question's position (None: the whole thing)."""

    message: str
    index: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.index is None:
            return self.message
        return _("Question %(number)s (%(key)s): %(message)s") % {
            "number": self.index + 1,
            "key": self.key or "?",
            "message": self.message,
        }


# --- helpers -------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _to_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a number or a numeric string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = to_halfwidth(value).strip().replace(",", "")
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set):
        return all(_is_empty(item) for item in value)
    return False


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = to_halfwidth(value).strip().lower()
        if word in _YES_WORDS:
            return True
        if word in _NO_WORDS:
            return False
    return None


def _to_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = to_halfwidth(value).strip()
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def questions(definition: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The question list of a definition (empty when malformed)."""
    if not isinstance(definition, Mapping):
        return []
    items = definition.get("questions")
    return [q for q in items if isinstance(q, dict)] if isinstance(items, list) else []


def question_map(definition: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {q["key"]: q for q in questions(definition) if isinstance(q.get("key"), str)}


def option_dtmf(question: Mapping[str, Any], index: int) -> str:
    option = question["options"][index]
    return str(option.get("dtmf") or (DIGITS[index] if index < len(DIGITS) else ""))


def scale_range(question: Mapping[str, Any]) -> tuple[int, int]:
    scale = question.get("scale") or {}
    return int(scale.get("min", 1)), int(scale.get("max", 5))


def keypad_choices(question: Mapping[str, Any]) -> dict[str, Any] | None:
    """Keypad digit → answer value for the IVR / SMS reply codes (F3.2); None when the answer
    must be keyed in as a number (number questions, ratings above 9) or cannot be keyed (text, date).
    """
    qtype = question.get("type")
    if qtype in CHOICE_TYPES:
        return {
            option_dtmf(question, i): option["value"]
            for i, option in enumerate(question["options"])
        }
    if qtype == QuestionType.YES_NO:
        return {"1": True, "2": False}
    if qtype == QuestionType.RATING:
        low, high = scale_range(question)
        if high <= 9:
            return {str(n): n for n in range(low, high + 1)}
    return None


# --- validating a definition ---------------------------------------------------------------------


def _check_options(question: dict[str, Any], issue: Any) -> None:
    options = question.get("options")
    if not isinstance(options, list) or len(options) < 2:
        issue(_("A choice question needs at least two options."))
        return
    if len(options) > MAX_OPTIONS:
        issue(
            _("A choice question can have at most %(max)s options (one keypad digit each).")
            % {"max": MAX_OPTIONS}
        )
    values: set[str] = set()
    digits: set[str] = set()
    for position, option in enumerate(options, start=1):
        if not isinstance(option, dict):
            issue(_("Option %(n)s is not an object.") % {"n": position})
            continue
        unknown = sorted(set(option) - _OPTION_FIELDS)
        if unknown:
            issue(
                _("Option %(n)s has unknown fields: %(fields)s.")
                % {"n": position, "fields": ", ".join(unknown)}
            )
        value = option.get("value")
        if not isinstance(value, str) or not value.strip():
            issue(_("Option %(n)s needs a value.") % {"n": position})
        elif value in values:
            issue(_("Option value %(value)s is used twice.") % {"value": value})
        else:
            values.add(value)
        label = option.get("label")
        if not isinstance(label, str) or not label.strip():
            issue(_("Option %(n)s needs a label.") % {"n": position})
        if "score" in option and option["score"] is not None and not _is_number(option["score"]):
            issue(_("The score of option %(n)s must be a number.") % {"n": position})
        if "alert" in option and not isinstance(option["alert"], bool):
            issue(_("The alert flag of option %(n)s must be true or false.") % {"n": position})
        if option.get("dtmf") not in (None, ""):
            digit = option["dtmf"]
            if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
                issue(_("The keypad digit of option %(n)s must be one digit.") % {"n": position})
                continue
        digit = option_dtmf(question, position - 1) if position <= MAX_OPTIONS else ""
        if digit and digit in digits:
            issue(_("Keypad digit %(digit)s is used by two options.") % {"digit": digit})
        digits.add(digit)


def _check_range(question: dict[str, Any], issue: Any, low_key: str, high_key: str) -> None:
    for field in (low_key, high_key):
        if question.get(field) is not None and not _is_number(question[field]):
            issue(_("%(field)s must be a number.") % {"field": field})
            return
    low, high = question.get(low_key), question.get(high_key)
    if low is not None and high is not None and low > high:
        issue(_("%(low)s must not be greater than %(high)s.") % {"low": low_key, "high": high_key})


def _check_type_fields(question: dict[str, Any], qtype: str, issue: Any) -> None:
    if qtype in CHOICE_TYPES:
        _check_options(question, issue)
    elif qtype == QuestionType.NUMBER:
        _check_range(question, issue, "min", "max")
        _check_range(question, issue, "alert_below", "alert_above")
        if "unit" in question and not isinstance(question["unit"], str):
            issue(_("The unit must be text."))
        if "integer" in question and not isinstance(question["integer"], bool):
            issue(_("integer must be true or false."))
    elif qtype == QuestionType.RATING:
        scale = question.get("scale")
        if not isinstance(scale, dict):
            issue(_("A rating question needs a scale with min and max."))
        else:
            low, high = scale.get("min"), scale.get("max")
            if (
                not (isinstance(low, int) and isinstance(high, int))
                or isinstance(low, bool)
                or isinstance(high, bool)
            ):
                issue(_("The scale's min and max must be whole numbers."))
            elif not 0 <= low < high <= 10:
                issue(_("The scale must run upwards within 0 to 10, e.g. 1 to 5."))
            extra = sorted(set(scale) - {"min", "max", "min_label", "max_label"})
            if extra:
                issue(_("The scale has unknown fields: %(fields)s.") % {"fields": ", ".join(extra)})
        if "scored" in question and not isinstance(question["scored"], bool):
            issue(_("scored must be true or false."))
        _check_range(question, issue, "alert_below", "alert_above")
    elif qtype == QuestionType.YES_NO:
        for field in ("labels", "score"):
            value = question.get(field)
            if value is None:
                continue
            if not isinstance(value, dict) or set(value) - {"yes", "no"}:
                issue(_("%(field)s must be an object with yes and no.") % {"field": field})
            elif field == "score" and not all(_is_number(v) for v in value.values()):
                issue(_("The yes/no scores must be numbers."))
            elif field == "labels" and not all(isinstance(v, str) for v in value.values()):
                issue(_("The yes/no labels must be text."))
        if question.get("alert") not in (None, "yes", "no"):
            issue(_("alert must be yes or no."))
    elif qtype == QuestionType.TEXT:
        length = question.get("max_length")
        if length is not None and (
            not isinstance(length, int) or isinstance(length, bool) or length < 1
        ):
            issue(_("max_length must be a positive whole number."))


def _check_show_if(
    question: dict[str, Any], earlier: dict[str, dict[str, Any]], issue: Any
) -> None:
    cond = question["show_if"]
    if not isinstance(cond, dict) or set(cond) != {"key", "op", "value"}:
        issue(_("The skip-logic condition needs exactly key, op and value."))
        return
    source = earlier.get(cond["key"]) if isinstance(cond["key"], str) else None
    if source is None:
        issue(
            _("The skip-logic condition must refer to an earlier question, not %(key)s.")
            % {"key": cond["key"]}
        )
        return
    op, value, stype = cond["op"], cond["value"], source.get("type")
    if op not in OPS:
        issue(_("Unknown skip-logic operator %(op)s.") % {"op": op})
        return
    if op in ORDERED_OPS and stype not in (
        QuestionType.NUMBER,
        QuestionType.RATING,
        QuestionType.DATE,
    ):
        issue(_("Greater / less than only apply to number, rating and date questions."))
        return
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value):
        issue(_("The operator in needs a non-empty list of values."))
        return
    for item in values:
        if stype in CHOICE_TYPES:
            allowed = {o.get("value") for o in source.get("options") or [] if isinstance(o, dict)}
            if item not in allowed:
                issue(
                    _("The skip-logic value %(value)s is not an option of %(key)s.")
                    % {"value": item, "key": cond["key"]}
                )
        elif stype == QuestionType.YES_NO and not isinstance(item, bool):
            issue(_("The skip-logic value for a yes/no question must be true or false."))
        elif stype in (QuestionType.NUMBER, QuestionType.RATING) and not _is_number(item):
            issue(_("The skip-logic value must be a number."))
        elif stype == QuestionType.DATE and _to_date(item) is None:
            issue(_("The skip-logic value must be a date (YYYY-MM-DD)."))
        elif stype == QuestionType.TEXT and not isinstance(item, str):
            issue(_("The skip-logic value must be text."))


def definition_issues(definition: Any) -> list[DefinitionIssue]:
    """Every problem of a definition, each tied to its question where there is one."""
    if not isinstance(definition, dict):
        return [DefinitionIssue(_("The definition must be an object with a question list."))]
    found: list[DefinitionIssue] = []
    unknown = sorted(set(definition) - {"questions"})
    if unknown:
        found.append(
            DefinitionIssue(
                _("Unknown top-level fields: %(fields)s.") % {"fields": ", ".join(unknown)}
            )
        )
    items = definition.get("questions")
    if not isinstance(items, list):
        return [*found, DefinitionIssue(_("The definition needs a list of questions."))]
    if not items:
        found.append(DefinitionIssue(_("Add at least one question.")))
    earlier: dict[str, dict[str, Any]] = {}
    for index, question in enumerate(items):
        key = question.get("key") if isinstance(question, dict) else None
        key = key if isinstance(key, str) else None

        def issue(message: str, index: int = index, key: str | None = key) -> None:
            found.append(DefinitionIssue(message, index, key))

        if not isinstance(question, dict):
            issue(_("A question must be an object."))
            continue
        if key is None or not KEY_RE.match(key):
            issue(
                _(
                    "The key must start with a lowercase letter and use only a-z, 0-9 and _ "
                    "(at most 40 characters)."
                )
            )
        elif key in earlier:
            issue(_("The key %(key)s is used twice.") % {"key": key})
        qtype = question.get("type")
        if qtype not in QuestionType.values:
            issue(_("Unknown question type %(type)s.") % {"type": qtype})
        text = question.get("text")
        if not isinstance(text, str) or not text.strip():
            issue(_("The question needs a text."))
        if "required" in question and not isinstance(question["required"], bool):
            issue(_("required must be true or false."))
        if "help" in question and not isinstance(question["help"], str):
            issue(_("The hint must be text."))
        if qtype in QuestionType.values:
            extra = sorted(set(question) - _COMMON_FIELDS - _TYPE_FIELDS[qtype])
            if extra:
                issue(
                    _("Fields not used by a %(type)s question: %(fields)s.")
                    % {"type": qtype, "fields": ", ".join(extra)}
                )
            _check_type_fields(question, qtype, issue)
        if question.get("show_if") is not None:
            _check_show_if(question, earlier, issue)
        if key is not None and key not in earlier:
            earlier[key] = question
    return found


def validate_definition(definition: Any) -> list[str]:
    """Errors of a questionnaire definition, as readable sentences; empty when it is valid."""
    return [str(issue) for issue in definition_issues(definition)]


def normalize_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a *valid* definition with defaults made explicit (``required``, keypad digits),
    so a published version says exactly what the IVR and SMS channels will accept."""
    result = json.loads(json.dumps(definition))
    for question in result["questions"]:
        question.setdefault("required", False)
        if question.get("show_if") is None:
            question.pop("show_if", None)
        if question["type"] in CHOICE_TYPES:
            for index, option in enumerate(question["options"]):
                option["dtmf"] = option_dtmf(question, index)
    return result


# --- skip logic ----------------------------------------------------------------------------------


def _coerce(question: Mapping[str, Any], value: Any) -> Any:
    """An answer as a comparable value for skip logic and scoring; None when empty or invalid."""
    if _is_empty(value):
        return None
    qtype = question.get("type")
    if qtype == QuestionType.MULTIPLE:
        items = value if isinstance(value, list | tuple | set) else [value]
        return [str(item) for item in items if not _is_empty(item)]
    if qtype in (QuestionType.NUMBER, QuestionType.RATING):
        return _to_decimal(value)
    if qtype == QuestionType.YES_NO:
        return _to_bool(value)
    if qtype == QuestionType.DATE:
        return _to_date(value)
    if isinstance(value, list | tuple):
        return None
    return str(value).strip()


def _holds(cond: Mapping[str, Any], source: Mapping[str, Any], answer: Any) -> bool:
    if answer is None:
        return False
    op, expected = cond["op"], cond["value"]
    stype = source.get("type")
    if stype == QuestionType.MULTIPLE:
        wanted = {str(v) for v in expected} if op == "in" else {str(expected)}
        ticked = bool(wanted & set(answer))
        return not ticked if op == "ne" else ticked
    if stype in (QuestionType.NUMBER, QuestionType.RATING):
        expected = [_to_decimal(v) for v in expected] if op == "in" else _to_decimal(expected)
    elif stype == QuestionType.DATE:
        expected = [_to_date(v) for v in expected] if op == "in" else _to_date(expected)
    elif stype == QuestionType.YES_NO:
        expected = [_to_bool(v) for v in expected] if op == "in" else _to_bool(expected)
    else:
        expected = [str(v) for v in expected] if op == "in" else str(expected)
    try:
        if op == "eq":
            return bool(answer == expected)
        if op == "ne":
            return bool(answer != expected)
        if op == "in":
            return answer in expected
        if op == "gt":
            return bool(answer > expected)
        if op == "gte":
            return bool(answer >= expected)
        if op == "lt":
            return bool(answer < expected)
        if op == "lte":
            return bool(answer <= expected)
    except TypeError:
        return False
    return False


def _visible_with_values(
    definition: Mapping[str, Any], answers: Mapping[str, Any]
) -> list[tuple[dict[str, Any], Any]]:
    shown: list[tuple[dict[str, Any], Any]] = []
    values: dict[str, Any] = {}  # only visible questions' answers count in later conditions
    by_key = question_map(definition)
    for question in questions(definition):
        cond = question.get("show_if")
        if cond:
            source = by_key.get(cond.get("key"))
            if source is None or not _holds(cond, source, values.get(cond.get("key"))):
                continue
        value = _coerce(question, answers.get(question["key"]))
        values[question["key"]] = value
        shown.append((question, value))
    return shown


def visible_questions(definition: Mapping[str, Any], answers: Mapping[str, Any]) -> list[dict]:
    """The questions shown for these answers, in order (skip logic applied).

    ``answers`` may be cleaned answers or raw strings from a form: both are compared by type.
    """
    return [question for question, _value in _visible_with_values(definition, answers or {})]


# --- cleaning answers ----------------------------------------------------------------------------


def _clean_one(question: Mapping[str, Any], raw: Any) -> Any:
    """The cleaned answer; raises ValueError with the message for the patient / agent."""
    qtype = question["type"]
    if qtype in CHOICE_TYPES:
        allowed = [option["value"] for option in question["options"]]
        items = raw if isinstance(raw, list | tuple | set) else [raw]
        picked = {str(item).strip() for item in items if not _is_empty(item)}
        unknown = picked - set(allowed)
        if unknown:
            raise ValueError(
                _("%(value)s is not one of the options.") % {"value": sorted(unknown)[0]}
            )
        if qtype == QuestionType.SINGLE:
            if len(picked) > 1:
                raise ValueError(_("Choose only one option."))
            return picked.pop()
        return [value for value in allowed if value in picked]
    if isinstance(raw, list | tuple | set):
        raise ValueError(_("Give one answer."))
    if qtype == QuestionType.NUMBER:
        number = _to_decimal(raw)
        if number is None:
            raise ValueError(_("Enter a number."))
        if question.get("integer") and number != number.to_integral_value():
            raise ValueError(_("Enter a whole number."))
        low, high = question.get("min"), question.get("max")
        low_number, high_number = _to_decimal(low), _to_decimal(high)
        too_low = low_number is not None and number < low_number
        too_high = high_number is not None and number > high_number
        if too_low or too_high:
            if low is not None and high is not None:
                message = _("Enter a number between %(min)s and %(max)s.")
            elif low is not None:
                message = _("Enter a number of at least %(min)s.")
            else:
                message = _("Enter a number of at most %(max)s.")
            raise ValueError(message % {"min": low, "max": high})
        return _json_number(number)
    if qtype == QuestionType.RATING:
        number = _to_decimal(raw)
        low, high = scale_range(question)
        if number is None or number != number.to_integral_value() or not low <= number <= high:
            raise ValueError(
                _("Choose a rating from %(min)s to %(max)s.") % {"min": low, "max": high}
            )
        return int(number)
    if qtype == QuestionType.YES_NO:
        answer = _to_bool(raw)
        if answer is None:
            raise ValueError(_("Answer yes or no."))
        return answer
    if qtype == QuestionType.DATE:
        date = _to_date(raw)
        if date is None:
            raise ValueError(_("Enter a valid date (YYYY-MM-DD)."))
        return date.isoformat()
    text = str(raw).strip()
    limit = question.get("max_length") or DEFAULT_TEXT_LENGTH
    if len(text) > limit:
        raise ValueError(_("Keep the answer within %(max)s characters.") % {"max": limit})
    return text


def clean_answers(definition: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed answers for the visible questions; raises AnswerError (key → message).

    Answers to questions hidden by skip logic are dropped; required visible questions must be
    answered; numbers are range-checked, dates parsed and choices checked against the options.
    A key that is not a question of the definition is reported, not ignored.
    """
    raw = raw or {}
    errors: dict[str, str] = {}
    by_key = question_map(definition)
    for key in raw:
        if key not in by_key:
            errors[str(key)] = _("There is no such question in this questionnaire.")
    cleaned: dict[str, Any] = {}
    for question in questions(definition):
        cond = question.get("show_if")
        if cond:
            source = by_key.get(cond.get("key"))
            # Conditions look at the cleaned answers of visible questions only.
            source_value = (
                _coerce(source, cleaned[cond["key"]])
                if source is not None and cond.get("key") in cleaned
                else None
            )
            if source is None or not _holds(cond, source, source_value):
                continue
        key = question["key"]
        value = raw.get(key)
        if _is_empty(value):
            if question.get("required"):
                errors[key] = _("This question is required.")
            continue
        try:
            cleaned[key] = _clean_one(question, value)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise AnswerError(errors)
    return cleaned


# --- scoring and abnormal answers ---------------------------------------------------------------


def has_scoring(definition: Mapping[str, Any]) -> bool:
    for question in questions(definition):
        if question.get("type") in CHOICE_TYPES and any(
            isinstance(o, dict) and _is_number(o.get("score")) for o in question.get("options", [])
        ):
            return True
        if question.get("type") == QuestionType.YES_NO and question.get("score"):
            return True
        if question.get("type") == QuestionType.RATING and question.get("scored"):
            return True
    return False


def question_score(question: Mapping[str, Any], value: Any) -> Decimal | None:
    """The points one answer earns, None when the question is not scored or not answered."""
    qtype = question.get("type")
    value = _coerce(question, value)
    if value is None:
        return None
    if qtype in CHOICE_TYPES:
        picked = value if isinstance(value, list) else [value]
        points = [
            number
            for o in question.get("options", [])
            if o.get("value") in picked and (number := _to_decimal(o.get("score"))) is not None
        ]
        return sum(points, Decimal(0)) if points else None
    if qtype == QuestionType.YES_NO and question.get("score"):
        points = question["score"].get("yes" if value else "no")
        return _to_decimal(points) if _is_number(points) else None
    if qtype == QuestionType.RATING and question.get("scored"):
        return value
    return None


def score(definition: Mapping[str, Any], answers: Mapping[str, Any]) -> Decimal | None:
    """Sum of the scores of the visible answers; None when the questionnaire has no scoring."""
    if not has_scoring(definition):
        return None
    total = Decimal(0)
    for question, _value in _visible_with_values(definition, answers or {}):
        points = question_score(question, answers.get(question["key"]))
        if points is not None:
            total += points
    return total


def is_alert(question: Mapping[str, Any], value: Any) -> bool:
    """Whether this answer is marked abnormal by the definition (an alert option, yes/no or range)."""
    qtype = question.get("type")
    value = _coerce(question, value)
    if value is None:
        return False
    if qtype in CHOICE_TYPES:
        picked = value if isinstance(value, list) else [value]
        return any(o.get("alert") for o in question.get("options", []) if o.get("value") in picked)
    if qtype == QuestionType.YES_NO:
        return question.get("alert") == ("yes" if value else "no")
    if qtype in (QuestionType.NUMBER, QuestionType.RATING):
        below = _to_decimal(question.get("alert_below"))
        above = _to_decimal(question.get("alert_above"))
        return (below is not None and value < below) or (above is not None and value > above)
    return False


def alerts(definition: Mapping[str, Any], answers: Mapping[str, Any]) -> list[str]:
    """Keys of the visible questions whose answer is abnormal (for warnings to the doctor)."""
    return [
        question["key"]
        for question, _value in _visible_with_values(definition, answers or {})
        if is_alert(question, answers.get(question["key"]))
    ]
