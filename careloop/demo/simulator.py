"""Simulated patients' phones (issue 4 item 9): real SIP and RTP, for the demo and the benchmark.

``careloop simulate-patients`` starts its own telephony engine (``python -m careloop.engine``,
no flow, so inbound calls wait for commands) and drives it over the engine's command API and
event websocket (docs/engine.md). CareLoop dials patients at ``CARELOOP_PATIENT_DIAL`` (e.g.
``sip:{number}@127.0.0.1:5090``); every call the simulator receives is a patient whose number is
the callee's user part, and the number decides — the same way on every run — what that patient
does:

* **answers** (``--answer-rate``, 70 %): rings for a second or two, answers, then presses keys
  with RFC 4733 events about 0.4 s apart. Automated flows read keys with barge-in and
  type-ahead, so the keys can go early and are consumed in order: consent ``1``, then the
  answers to the questionnaire the call is about. A share of the answering patients
  (``--unwell-rate``) are unwell: they pick the options marked abnormal and report a fever
  (38.9 °C), so the follow-up raises an alert; the others pick normal answers (36.8 °C);
* **busy** (``--busy-rate``): the call is refused with ``486 Busy Here``;
* **never answers** (``--no-answer-rate``): it rings until the caller gives up;
* **wrong number** (``--wrong-number-rate``): ``404 Not Found`` (the number is not in service).

The rates are shares of all patients and are scaled to add up to 1.

The questionnaire comes from the database (this is a demo tool running inside the project):
the patient with that number, the automated contact attempt dialling them now, its follow-up
step's questionnaire (published version) and the keys ``flowgen`` expects for the answers. A
reminder call (``purpose`` reminder) is listened to, then "received" is pressed (the key of the
reminder flow's 收到 option, ``2`` in ``outreach/reminders.py``). A call nobody in the database
explains gets consent ``1`` only.

The simulator never hangs up first: the automated flow does (its BYE ends the call). A call
still up after ``--max-call-seconds`` is hung up. Logs name calls by the engine's leg id and
masked numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

log = logging.getLogger("careloop.simulator")

ANSWER, BUSY, NO_ANSWER, WRONG_NUMBER = "answer", "busy", "no_answer", "wrong_number"
BEHAVIOURS = (ANSWER, BUSY, NO_ANSWER, WRONG_NUMBER)
DEFAULT_SIP_LISTEN = "127.0.0.1:5090"
DEFAULT_RTP_PORTS = "40000-44998"
#: Body temperatures the simulated patients report (°C).
NORMAL_TEMPERATURE = Decimal("36.8")
FEVER = Decimal("38.9")


# --- who the patient is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Shares of patients by behaviour (scaled to add up to 1) and of answering patients unwell."""

    answer: float = 0.7
    busy: float = 0.1
    no_answer: float = 0.12
    wrong_number: float = 0.08
    unwell: float = 0.15

    def __post_init__(self) -> None:
        values = (self.answer, self.busy, self.no_answer, self.wrong_number, self.unwell)
        if any(v < 0 for v in values) or self.unwell > 1:
            raise ValueError("rates must be between 0 and 1")
        if self.answer + self.busy + self.no_answer + self.wrong_number <= 0:
            raise ValueError("at least one behaviour needs a rate above 0")

    def thresholds(self) -> list[tuple[float, str]]:
        total = self.answer + self.busy + self.no_answer + self.wrong_number
        bounds, running = [], 0.0
        for behaviour, share in zip(
            BEHAVIOURS, (self.answer, self.busy, self.no_answer, self.wrong_number), strict=True
        ):
            running += share / total
            bounds.append((running, behaviour))
        return bounds


@dataclass(frozen=True)
class Persona:
    behaviour: str
    unwell: bool
    #: Seconds the phone rings before an answering patient picks up.
    answer_delay: float


def _fractions(number: str, salt: str) -> tuple[float, float, float]:
    digest = hashlib.sha256(f"{salt}:{number}".encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in (0, 8, 16))  # type: ignore[return-value]


def persona_for(number: str, rates: Rates | None = None, *, salt: str = "careloop") -> Persona:
    """What the patient with this number does when called: the same on every run."""
    rates = rates or Rates()
    pick, health, delay = _fractions(number, salt)
    behaviour = NO_ANSWER
    for bound, name in rates.thresholds():
        if pick < bound:
            behaviour = name
            break
    return Persona(
        behaviour=behaviour,
        unwell=behaviour == ANSWER and health < rates.unwell,
        answer_delay=round(0.8 + 2.2 * delay, 2),
    )


def number_with(
    behaviour: str,
    rates: Rates | None = None,
    *,
    unwell: bool | None = None,
    prefix: str = "139",
    salt: str = "careloop",
    start: int = 0,
) -> str:
    """The first 11-digit mobile number (from ``prefix``) with that behaviour (tests, benchmarks)."""
    for n in range(start, start + 1_000_000):
        number = f"{prefix}{n:0{11 - len(prefix)}d}"
        persona = persona_for(number, rates, salt=salt)
        if persona.behaviour == behaviour and (unwell is None or persona.unwell == unwell):
            return number
    raise LookupError(f"no number with behaviour {behaviour}")


# --- answers and keys ------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None


def _is_temperature(question: Mapping[str, Any]) -> bool:
    return question.get("key") == "temperature" or (question.get("unit") or "") in ("°C", "℃")


def _normal_number(question: Mapping[str, Any]) -> Decimal:
    """A normal value inside the question's range and clear of its alert thresholds."""
    from careloop.demo.answers import TYPICAL, TYPICAL_BY_UNIT

    if _is_temperature(question):
        return NORMAL_TEMPERATURE
    typical = TYPICAL.get(str(question.get("key"))) or TYPICAL_BY_UNIT.get(
        question.get("unit") or ""
    )
    low, high = _decimal(question.get("min")), _decimal(question.get("max"))
    below, above = _decimal(question.get("alert_below")), _decimal(question.get("alert_above"))
    if typical is not None:
        value = (Decimal(str(typical[0])) + Decimal(str(typical[1]))) / 2
    else:
        start = below if below is not None else low if low is not None else Decimal(0)
        end = above if above is not None else high if high is not None else start + 10
        value = (start + end) / 2
    for limit in (below, low):
        if limit is not None:
            value = max(value, limit)
    for limit in (above, high):
        if limit is not None:
            value = min(value, limit)
    return _shape(question, value)


def _abnormal_number(question: Mapping[str, Any]) -> Decimal | None:
    if _is_temperature(question):
        return FEVER
    low, high = _decimal(question.get("min")), _decimal(question.get("max"))
    below, above = _decimal(question.get("alert_below")), _decimal(question.get("alert_above"))
    if above is not None:
        top = high if high is not None else above * Decimal("1.3")
        return _shape(question, above + max((top - above) / 3, Decimal(1)))
    if below is not None:
        bottom = low if low is not None else Decimal(0)
        return _shape(question, max(bottom, below - max((below - bottom) / 3, Decimal(1))))
    return None


def _shape(question: Mapping[str, Any], value: Decimal) -> Decimal:
    if question.get("integer"):
        return value.quantize(Decimal(1))
    return value.quantize(Decimal("0.1")).normalize()


def _yes_no_answer(question: Mapping[str, Any], abnormal: bool) -> bool:
    alert = question.get("alert")
    if alert == "yes":
        return abnormal
    if alert == "no":
        return not abnormal
    labels = question.get("labels") or {}
    # "Is there something wrong?" questions are answered "no"; "did you do X?" questions "yes".
    return labels.get("yes") not in {"有", "发黄", "是"}


def _choice_answer(question: Mapping[str, Any], abnormal: bool) -> Any:
    options = question.get("options") or []
    alerting = [o["value"] for o in options if o.get("alert")]
    normal = [o["value"] for o in options if not o.get("alert")]
    if question.get("type") == "multiple":
        return [alerting[0]] if abnormal and alerting else []
    if abnormal and alerting:
        return alerting[0]
    return (normal or [o["value"] for o in options])[0]


def _rating_answer(question: Mapping[str, Any], abnormal: bool) -> int:
    from careloop.surveys.schema import scale_range

    low, high = scale_range(question)
    below, above = question.get("alert_below"), question.get("alert_above")
    if above is not None:  # a pain score: low is good
        return min(int(above) + 1, high) if abnormal else low
    if below is not None and abnormal:
        return max(low, int(below) - 1)
    return high


def _can_alert(question: Mapping[str, Any]) -> bool:
    from careloop.demo.answers import can_alert

    return can_alert(dict(question))


def persona_answers(definition: Mapping[str, Any], *, unwell: bool) -> dict[str, Any]:
    """The answers of a simulated patient to the visible questions the keypad can answer.

    Healthy: normal options, a normal temperature. Unwell: a fever wherever a temperature is
    asked and, so there is something to raise an alert even without one, the abnormal side of
    the first question that can be abnormal; the rest normal. Skip logic applies as it goes.
    """
    from careloop.surveys import schema

    answers: dict[str, Any] = {}
    abnormal_key = ""
    if unwell:
        candidates = [
            q for q in schema.questions(definition) if _can_alert(q) and not q.get("show_if")
        ]
        non_temperature = [q for q in candidates if not _is_temperature(q)]
        chosen = non_temperature or candidates
        abnormal_key = str(chosen[0]["key"]) if chosen else ""
    for question in schema.questions(definition):
        key = question["key"]
        if key not in {q["key"] for q in schema.visible_questions(definition, answers)}:
            continue
        bad = unwell and (key == abnormal_key or _is_temperature(question))
        qtype = question.get("type")
        if qtype in ("single", "multiple"):
            answers[key] = _choice_answer(question, bad)
        elif qtype == "yes_no":
            answers[key] = _yes_no_answer(question, bad)
        elif qtype == "rating":
            answers[key] = _rating_answer(question, bad)
        elif qtype == "number":
            value = _abnormal_number(question) if bad else None
            answers[key] = value if value is not None else _normal_number(question)
    return answers


def _number_keys(value: Any) -> str:
    """A number keyed in: digits, ``*`` for the decimal point, ``#`` to finish (flowgen's gather
    pattern ``[0-9]{1,5}(\\*[0-9]{1,2})?``)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text.replace(".", "*").lstrip("-") + "#"


def keys_for_answers(version: Any, answers: Mapping[str, Any]) -> list[str]:
    """The keys, one string per question asked, that give ``answers`` in the automated flow
    ``careloop.outreach.flowgen`` builds for ``version`` (a ``QuestionnaireVersion`` or a
    definition), consent not included.

    Only the questions flowgen asks (``asked_questions``: keypad-answerable, skip logic the flow
    can decide), and of those the ones shown for these answers — the flow's ``switch`` nodes
    follow the same answers. Menus (single choice, yes/no, ratings up to 9) take one digit;
    multiple choice the options' digits then ``#`` (``0#`` for none); numbers their digits with
    ``*`` for the decimal point, then ``#``. An asked question without an answer gets no key
    (the flow then moves on after its timeout).
    """
    from careloop.outreach import flowgen
    from careloop.surveys import schema

    definition = getattr(version, "definition", version)
    asked = {q["key"] for q in flowgen.asked_questions(definition)}
    keys: list[str] = []
    for question in schema.visible_questions(definition, answers):
        key = question["key"]
        if key not in asked or key not in answers:
            continue
        value = answers[key]
        kind = flowgen.keypad_kind(question)
        if kind == "menu":
            keypad = schema.keypad_choices(question) or {}
            digit = next((d for d, v in keypad.items() if v == value), None)
            if digit is not None:
                keys.append(digit)
        elif kind == "multiple":
            chosen = value if isinstance(value, list) else [value]
            keys.append(_multiple_keys(question, chosen))
        elif kind == "number":
            keys.append(_number_keys(value))
    return keys


def _multiple_keys(question: Mapping[str, Any], chosen: list[Any]) -> str:
    """A "tick all that apply" question: the options' keys then ``#``; ``0#`` for none."""
    from careloop.surveys.schema import option_dtmf

    digits = [
        option_dtmf(question, i)
        for i, option in enumerate(question.get("options") or [])
        if option.get("value") in chosen
    ]
    return ("".join(digits) or "0") + "#"


@dataclass
class CallPlan:
    """What an answering patient presses on one call, and what the call is about (for logs)."""

    keys: list[str]
    about: str = "unknown"
    attempt_id: int | None = None
    #: Seconds to listen after answering before the first key (a reminder's text).
    listen: float = 0.0


def confirm_key(flow: Mapping[str, Any]) -> str:
    """The key of a reminder flow's "received" option (a menu option setting ``outreach_result``
    to ``confirmed``); "1" when the flow has none."""
    for node in (flow.get("nodes") or {}).values():
        if not isinstance(node, dict) or node.get("type") != "menu":
            continue
        for digit, option in (node.get("options") or {}).items():
            if isinstance(option, dict):
                if (option.get("set") or {}).get("outreach_result") == "confirmed":
                    return str(digit)
    return "1"


def plan_from_database(number: str, persona: Persona) -> CallPlan:
    """Consent and the answers to the questionnaire of the automated call dialling ``number``."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        return _plan_from_database(number, persona)
    finally:
        close_old_connections()


def _plan_from_database(number: str, persona: Persona) -> CallPlan:
    from careloop.outreach.choices import AttemptState, Purpose
    from careloop.outreach.models import ContactAttempt

    attempt = (
        ContactAttempt.objects.filter(
            patient__phone=number, state__in=(AttemptState.DIALING, AttemptState.ANSWERED)
        )
        .select_related("task__step", "reminder")
        .order_by("-started_at", "-pk")
        .first()
    )
    if attempt is None:
        return CallPlan(keys=["1"], about="unknown")
    if attempt.purpose == Purpose.REMINDER:
        # Listen to the reminder to the end, then press "received" (收到请按…).
        text = getattr(attempt.reminder, "text", "") or ""
        return CallPlan(
            keys=[confirm_key(attempt.data.get("flow") or {})],
            about="reminder",
            attempt_id=attempt.pk,
            listen=min(6.0 + 0.25 * len(text), 60.0),
        )
    version = None
    if attempt.task is not None:
        from careloop.followup.services import questionnaire_version

        version = questionnaire_version(attempt.task.step)
    if version is None:
        return CallPlan(keys=["1"], about=str(attempt.purpose), attempt_id=attempt.pk)
    answers = persona_answers(version.definition, unwell=persona.unwell)
    keys = keys_for_answers(version, answers)
    return CallPlan(
        keys=["1", *keys],
        about=f"{attempt.purpose} {version.questionnaire.code} v{version.number}",
        attempt_id=attempt.pk,
    )


# --- the controller --------------------------------------------------------------------------------


def _masked(number: str) -> str:
    from careloop.core.formats import mask_phone

    return mask_phone(number) or "?"


def callee_number(uri: str) -> str:
    """The user part of a SIP URI (``sip:13800138000@host`` → ``13800138000``)."""
    text = uri.strip().strip("<>")
    if ":" in text.split("@", 1)[0]:
        text = text.split(":", 1)[1]
    return text.split("@", 1)[0].split(";", 1)[0]


@dataclass
class CallLog:
    """One call the simulator took (kept in memory for tests and the benchmark; numbers masked)."""

    call_id: str
    number: str
    behaviour: str
    unwell: bool = False
    about: str = ""
    keys: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    answered: bool = False
    ended: bool = False
    cause: str = ""
    seconds: float = 0.0


class Simulator:
    """The patients' engine and its controller (see the module docstring)."""

    def __init__(
        self,
        *,
        sip_listen: str = DEFAULT_SIP_LISTEN,
        rates: Rates | None = None,
        salt: str = "careloop",
        data_dir: str | None = None,
        rtp_ports: str = DEFAULT_RTP_PORTS,
        key_gap: float = 0.4,
        key_start: float = 1.0,
        max_call_seconds: float = 600.0,
        think_time: float = 0.0,
        planner: Callable[[str, Persona], CallPlan] | None = None,
        answer_delay: float | None = None,
        engine_log: str | None = None,
    ) -> None:
        self.sip_listen = sip_listen
        self.rates = rates or Rates()
        self.salt = salt
        self.rtp_ports = rtp_ports
        self.key_gap = key_gap
        self.key_start = key_start
        self.max_call_seconds = max_call_seconds
        self.think_time = think_time
        self.planner = planner or plan_from_database
        self.answer_delay = answer_delay
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="careloop-patients-"))
        self.engine_log = Path(engine_log) if engine_log else self.data_dir / "engine.log"
        self.token = secrets.token_urlsafe(24)
        self.api = ""
        self.process: asyncio.subprocess.Process | None = None
        self.calls: dict[str, CallLog] = {}
        self.counts: Counter[str] = Counter()
        self._ended: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: Any = None
        self.ready = threading.Event()

    # engine process -------------------------------------------------------------------------

    async def start_engine(self) -> None:
        api_port = _free_tcp_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARELOOP_ENGINE_")}
        env["CARELOOP_ENGINE_API_TOKEN"] = self.token
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "careloop.engine",
            "--sip-listen",
            self.sip_listen,
            "--rtp-ports",
            self.rtp_ports,
            "--api-listen",
            f"127.0.0.1:{api_port}",
            "--data-dir",
            str(self.data_dir / "engine"),
            "--max-calls",
            "2000",
        ]
        with open(self.engine_log, "ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        except TimeoutError:
            line = b""
        if not line:
            raise RuntimeError(
                f"the patients' engine did not start; see {self.engine_log}:\n{self._log_tail()}"
            )
        ready = json.loads(line)
        self.api = str(ready["api"])

    def _log_tail(self) -> str:
        try:
            return self.engine_log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    async def stop_engine(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    # main loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start the engine, take calls until ``stop`` is set (or the task is cancelled)."""
        import httpx

        stop = stop or asyncio.Event()
        await self.start_engine()
        try:
            async with httpx.AsyncClient(
                base_url=f"{self.api}/v1",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
            ) as http:
                self._http = http
                events = asyncio.create_task(self._events())
                self.ready.set()
                waiter = asyncio.create_task(stop.wait())
                done, _pending = await asyncio.wait(
                    {events, waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in (events, waiter, *self._tasks):
                    task.cancel()
                for task in (events, waiter, *list(self._tasks)):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if events in done and events.exception() is not None:
                    raise events.exception()  # type: ignore[misc]
        finally:
            self._http = None
            await self.stop_engine()
            if self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    async def _events(self) -> None:
        import websockets

        ws_url = self.api.replace("http://", "ws://", 1) + f"/v1/events?token={self.token}"
        ws_url += "&types=call.*"
        since: int | None = None
        while True:
            url = ws_url if since is None else f"{ws_url}&since={since}"
            try:
                async with websockets.connect(url, max_size=None, ping_interval=20) as ws:
                    async for raw in ws:
                        event = json.loads(raw)
                        if event.get("type") == "hello":
                            continue
                        since = int(event.get("seq") or since or 0)
                        self._on_event(event)
            except (OSError, websockets.WebSocketException) as exc:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(
                        f"the patients' engine exited ({self.process.returncode}):\n"
                        + self._log_tail()
                    ) from exc
                log.warning("event socket lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(0.5)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        call_id = str(event.get("call_id") or "")
        data = event.get("data") or {}
        if kind == "call.created" and data.get("direction") == "inbound":
            self._ended[call_id] = asyncio.Event()
            task = asyncio.create_task(self._take(call_id, callee_number(str(data.get("callee")))))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "call.answered" and call_id in self.calls:
            self.calls[call_id].answered = True
        elif kind == "call.ended" and call_id in self._ended:
            record = self.calls.get(call_id)
            if record is not None:
                record.ended, record.cause = True, str(data.get("cause") or "")
                record.seconds = round(time.monotonic() - record.started, 1)
            self._ended.pop(call_id).set()

    async def _command(
        self, call_id: str, command: str, body: dict[str, Any] | None = None
    ) -> bool:
        assert self._http is not None
        response = await self._http.post(f"/calls/{call_id}/{command}", json=body or {})
        if response.status_code >= 400:
            code = (response.json().get("error") or {}).get("code", response.status_code)
            # The engine rings inbound calls by itself: a "ring" refused as wrong_state is normal.
            quiet = command == "ring" and code == "wrong_state"
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "call %s: %s refused (%s)",
                call_id[:8],
                command,
                code,
            )
            return False
        return True

    async def _take(self, call_id: str, number: str) -> None:
        persona = persona_for(number, self.rates, salt=self.salt)
        record = CallLog(call_id, number, persona.behaviour, unwell=persona.unwell)
        self.calls[call_id] = record
        self.counts[persona.behaviour] += 1
        ended = self._ended[call_id]
        try:
            if persona.behaviour == BUSY:
                await self._command(call_id, "reject", {"code": 486})
            elif persona.behaviour == WRONG_NUMBER:
                await self._command(call_id, "reject", {"code": 404})
            elif persona.behaviour == NO_ANSWER:
                await self._command(call_id, "ring")
                await self._until(ended, self.max_call_seconds)
            else:
                await self._answer(call_id, number, persona, record, ended)
        except Exception:
            log.exception("call %s: simulator error", call_id[:8])
            self.counts["errors"] += 1
        if not ended.is_set():
            await self._until(ended, 35)
        self._log(record)

    async def _answer(
        self, call_id: str, number: str, persona: Persona, record: CallLog, ended: asyncio.Event
    ) -> None:
        await self._command(call_id, "ring")
        try:
            plan = await asyncio.to_thread(self.planner, number, persona)
        except Exception:
            log.exception("call %s: could not look the call up; pressing 1 only", call_id[:8])
            plan = CallPlan(keys=["1"])
        record.about = plan.about
        delay = persona.answer_delay if self.answer_delay is None else self.answer_delay
        if await self._until(ended, delay):
            return  # the caller gave up first
        if not await self._command(call_id, "answer"):
            return
        record.answered = True
        if await self._until(ended, self.key_start + plan.listen):
            return
        for group in plan.keys:
            if self.think_time and await self._until(ended, self.think_time):
                return  # listening to the question before answering it
            for digit in group:
                if ended.is_set() or not await self._command(
                    call_id, "dtmf", {"digits": digit, "method": "rfc4733"}
                ):
                    return
                record.keys.append(digit)
                if await self._until(ended, self.key_gap):
                    return
        if not await self._until(ended, self.max_call_seconds):
            log.info("call %s: still up after %ss; hanging up", call_id[:8], self.max_call_seconds)
            await self._command(call_id, "hangup")

    @staticmethod
    async def _until(event: asyncio.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; True when it is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        return event.is_set()

    def _log(self, record: CallLog) -> None:
        self.counts["calls"] += 1
        if record.unwell:
            self.counts["unwell"] += 1
        if record.answered:
            self.counts["answered"] += 1
        log.info(
            "call %s to %s: %s%s%s, %d keys, ended %s after %.1f s",
            record.call_id[:8],
            _masked(record.number),
            record.behaviour,
            " (unwell)" if record.unwell else "",
            f", {record.about}" if record.about else "",
            len(record.keys),
            record.cause or "?",
            record.seconds,
        )


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class SimulatorThread:
    """A simulator on its own event loop in a background thread (tests, the benchmark)."""

    def __init__(self, **kwargs: Any) -> None:
        self.simulator = Simulator(**kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="patients", daemon=True)

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.simulator.run(self._stop)

        try:
            asyncio.run(body())
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
        finally:
            self.simulator.ready.set()

    def start(self, timeout: float = 30) -> SimulatorThread:
        self._thread.start()
        if not self.simulator.ready.wait(timeout):
            raise RuntimeError("the patient simulator did not start")
        if self._error is not None:
            raise RuntimeError(f"the patient simulator failed: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 20) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    @property
    def calls(self) -> list[CallLog]:
        return list(self.simulator.calls.values())

    @property
    def engine_pid(self) -> int | None:
        process = self.simulator.process
        return process.pid if process is not None else None


# --- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = Rates()
    parser = argparse.ArgumentParser(
        prog="careloop simulate-patients",
        description="Simulated patients' phones answering CareLoop's automated calls (demo).",
    )
    parser.add_argument("--sip-listen", default=DEFAULT_SIP_LISTEN, help="HOST:PORT for SIP")
    parser.add_argument("--rtp-ports", default=DEFAULT_RTP_PORTS, help="LOW-HIGH RTP ports")
    parser.add_argument("--answer-rate", type=float, default=defaults.answer)
    parser.add_argument("--busy-rate", type=float, default=defaults.busy)
    parser.add_argument("--no-answer-rate", type=float, default=defaults.no_answer)
    parser.add_argument("--wrong-number-rate", type=float, default=defaults.wrong_number)
    parser.add_argument(
        "--unwell-rate", type=float, default=defaults.unwell, help="share of answering patients"
    )
    parser.add_argument("--key-gap", type=float, default=0.4, help="seconds between key presses")
    parser.add_argument("--answer-delay", type=float, default=None, help="ring seconds (fixed)")
    parser.add_argument(
        "--think-time",
        type=float,
        default=0.0,
        help="seconds spent listening before each answer (0: type ahead at once)",
    )
    parser.add_argument("--max-call-seconds", type=float, default=600)
    parser.add_argument("--salt", default="careloop", help="changes who does what")
    parser.add_argument("--data-dir", default=None, help="the engine's data (default: temporary)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``careloop simulate-patients`` (Django is set up by ``careloop.cli``)."""
    options = build_parser().parse_args(argv)
    logging.basicConfig(
        level=options.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rates = Rates(
        answer=options.answer_rate,
        busy=options.busy_rate,
        no_answer=options.no_answer_rate,
        wrong_number=options.wrong_number_rate,
        unwell=options.unwell_rate,
    )
    simulator = Simulator(
        sip_listen=options.sip_listen,
        rates=rates,
        salt=options.salt,
        data_dir=options.data_dir,
        rtp_ports=options.rtp_ports,
        key_gap=options.key_gap,
        answer_delay=options.answer_delay,
        max_call_seconds=options.max_call_seconds,
        think_time=options.think_time,
    )

    async def body() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(simulator.run(stop))
        while not simulator.ready.is_set() and not runner.done():
            await asyncio.sleep(0.05)
        if not runner.done():
            log.info(
                "simulated patients answer SIP calls at %s (answer %.0f %%, busy %.0f %%, "
                "no answer %.0f %%, wrong number %.0f %%; %.0f %% of answering patients unwell)",
                options.sip_listen,
                *(100 * share for share in _shares(rates)),
                100 * rates.unwell,
            )
        await runner
        log.info("simulated patients stopped: %s", dict(simulator.counts))

    try:
        asyncio.run(body())
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    return 0


def _shares(rates: Rates) -> list[float]:
    total = rates.answer + rates.busy + rates.no_answer + rates.wrong_number
    return [r / total for r in (rates.answer, rates.busy, rates.no_answer, rates.wrong_number)]


__all__ = [
    "CallLog",
    "CallPlan",
    "Persona",
    "Rates",
    "Simulator",
    "SimulatorThread",
    "callee_number",
    "keys_for_answers",
    "main",
    "number_with",
    "persona_answers",
    "persona_for",
]
