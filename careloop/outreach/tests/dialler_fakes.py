"""A stand-in for the engine's command API in the dialler's unit tests, and engine events.

The fake records the commands the dialler sends (what a real engine would receive) and answers
them the way docs/engine.md says the engine does; tests then feed the webhook batches the engine
would send (``careloop.contactcenter.services.handle_events``). The real engine is exercised end
to end in tests/telephony/test_automated_calls.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from careloop.contactcenter.engine_client import EngineError
from careloop.core import testing
from careloop.followup import services as followup
from careloop.followup.choices import Channel
from careloop.followup.tests.factories import make_discharge, make_plan, make_questionnaire
from careloop.outreach.models import ContactPolicy

#: 2026-03-10 09:00 Shanghai (a Tuesday, inside the default contact hours).
NOW = timezone.make_aware(dt.datetime(2026, 3, 10, 9, 0))

FEVER_QUESTIONNAIRE: dict[str, Any] = {
    "questions": [
        {
            "key": "temperature",
            "type": "number",
            "text": "您现在的体温是多少?",
            "required": True,
            "min": 34,
            "max": 43,
            "unit": "°C",
            "alert_above": 38.5,
        },
        {"key": "medication", "type": "yes_no", "text": "是否按时服药?", "required": True},
        {"key": "remarks", "type": "text", "text": "其他不适"},
    ]
}


class FakeEngine:
    """Records commands; ``down`` makes every command fail as an unreachable engine does."""

    def __init__(self) -> None:
        self.originated: list[dict[str, Any]] = []
        self.commands: list[tuple[str, Any]] = []
        self.down = False
        self.refuse: str | None = None
        self._ids = itertools.count(1)

    def _check(self) -> None:
        if self.down:
            raise EngineError("unreachable", "ConnectError")
        if self.refuse:
            raise EngineError(self.refuse, "refused", 400)

    def originate_flow(self, to: str, **kwargs: Any) -> dict[str, Any]:
        self._check()
        leg = f"{next(self._ids):016x}"
        self.originated.append({"to": to, "call_id": leg, **kwargs})
        return {"call_id": leg, "state": "dialing"}

    def originate(self, to: str, **kwargs: Any) -> dict[str, Any]:
        self._check()
        leg = f"a{next(self._ids):015x}"
        self.commands.append(("originate", {"to": to, "call_id": leg, **kwargs}))
        return {"call_id": leg, "state": "dialing"}

    def record(self, call_id: str, *, mode: str = "both") -> dict[str, Any]:
        self.commands.append(("record", call_id))
        return {"recording_id": "r" + call_id, "path": "/tmp/x.ogg"}

    def hangup(self, call_id: str, *, cause: str = "normal") -> None:
        self.commands.append(("hangup", call_id))

    def bridge(self, call_ids: list[str], **kwargs: Any) -> dict[str, Any]:
        self.commands.append(("bridge", call_ids))
        return {"bridge_id": "b1", "members": call_ids}

    def get_call(self, call_id: str) -> dict[str, Any]:
        raise EngineError("not_found", "no such call", 404)


class Events:
    """Engine event envelopes with growing ``seq``."""

    def __init__(self) -> None:
        self.seq = 0
        self.clock = NOW  # the events' time stamps (the tests' clock)

    def make(self, kind: str, leg: str, **data: Any) -> dict[str, Any]:
        self.seq += 1
        return {
            "v": 1,
            "seq": self.seq,
            "ts": self.clock.isoformat(),
            "type": kind,
            "call_id": leg,
            "data": data,
        }

    def unanswered(self, leg: str, attempt_id: int, result: str) -> list[dict[str, Any]]:
        code = {"busy": 486, "no_answer": 487, "unreachable": 404, "rejected": 603}.get(result, 500)
        return [
            self.make(
                "call.created", leg, direction="outbound", app_data={"outreach_attempt": attempt_id}
            ),
            self.make("call.ended", leg, cause=result, sip_code=code, hangup_by="remote"),
            self.make("cdr", leg, record={"leg_id": leg, "dial_result": result, "sip_code": code}),
        ]

    def answered(
        self, leg: str, attempt_id: int, variables: dict[str, Any], outcome: str = "hangup"
    ) -> list[dict[str, Any]]:
        """A call answered whose flow hangs up itself: the engine sends call.ended (and the CDR)
        before flow.finished."""
        return [
            self.make(
                "call.created", leg, direction="outbound", app_data={"outreach_attempt": attempt_id}
            ),
            self.make("call.answered", leg, codec="PCMA"),
            self.make("call.ended", leg, cause="normal", sip_code=None, hangup_by="local"),
            self.make("cdr", leg, record={"leg_id": leg, "dial_result": "answered"}),
            self.make(
                "flow.finished",
                leg,
                flow_id="f",
                flow_version=1,
                outcome=outcome,
                node="goodbye",
                variables={"caller": "sip:careloop@x", "callee": "sip:13800000000@x", **variables},
            ),
        ]


def open_policy(**overrides: Any) -> ContactPolicy:
    """The policy with generous caps so tests see one rule at a time."""
    policy, _created = ContactPolicy.objects.get_or_create(pk=1)
    values = {"max_per_day": 20, "max_per_week": 50, **overrides}
    for key, value in values.items():
        setattr(policy, key, value)
    policy.save()
    return policy


def make_ivr_task(
    department: Any,
    *,
    definition: dict[str, Any] | None = None,
    code: str = "fever",
    team: Any = None,
    assignment: str = "pool",
    max_attempts: int = 3,
    phone: str | None = None,
    now: dt.datetime | None = None,
) -> Any:
    """An open, due follow-up step on the channel "automated call" with a questionnaire."""
    questionnaire = make_questionnaire(code=code, definition=definition or FEVER_QUESTIONNAIRE)
    plan = make_plan(
        department,
        name=f"自动随访-{code}",
        steps=[
            {
                "day_offset": 3,
                "title": "出院3天",
                "channel": Channel.IVR,
                "questionnaire": questionnaire,
            }
        ],
        team=team,
        assignment=assignment,
        max_attempts=max_attempts,
    )
    patient = testing.make_patient(**({"phone": phone} if phone else {}))
    encounter = make_discharge(
        department,
        discharged_on=timezone.localdate(now or NOW) - dt.timedelta(days=3),
        patient=patient,
    )
    enrollment = followup.enrol(
        plan,
        patient,
        anchor_date=timezone.localdate(encounter.discharged_at),
        encounter=encounter,
        now=now or NOW,
    )
    return enrollment.tasks.get()
