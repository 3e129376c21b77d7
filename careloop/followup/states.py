"""The one state model of a follow-up task (F2.3).

Every list, count and figure asks this module what a task's state is; nothing else computes its own
notion of "due" or "overdue".

States::

    pending ──(window opens)──▶ due ──(deadline passes)──▶ overdue        ← time-based, "open"
       │                         │                            │
       └──────────────┬──────────┴────────────────────────────┘
                      ▼
      done · unreached · lost · cancelled                                  ← final, set by a person
                                                                             or a service

* **Open states** follow the calendar alone. ``time_state`` decides them from the task's window in
  the hospital's time zone (Asia/Shanghai): before ``window_start`` a task is *pending*, from
  ``window_start`` to ``deadline`` (both inclusive) it is *due*, after ``deadline`` it is *overdue*.
  Retries (``next_attempt_at``) do not change the state; they only say when to try again.
* **Final states** are reached through an outcome or a service, never through time:

  - *done*: the patient was reached (the questionnaire response is attached);
  - *unreached*: no answer / busy on every allowed attempt, or a wrong number;
  - *lost*: the patient refused follow-up — the enrolment ends as lost;
  - *cancelled*: withdrawn from the plan, patient deceased, do-not-contact or opted out of the
    channel, or the window had already closed when the patient was enrolled.

  A final state is never left.

**Automated calls and the contact ladder** (issue 4 item 5). A step whose channel is
"automated call" (``Channel.IVR``) is worked by the dialler (careloop/outreach/automated.py), in the
same states: it stays *due*/*overdue* while automated calls are made, and reaches a final state the
usual ways (the keypad answers are recorded with ``record_outcome(reached)`` → *done*). Automated
calls that do not finish the step (no answer, busy, wrong number, "not now", 0, 9) are recorded as
``FollowUpRecord`` on channel IVR by ``services.record_automated_attempt``, which moves neither the
state nor ``Task.attempts``: the dialler counts its own calls (``ContactPolicy.automated_attempts``).
When they are used up, or the patient asks for a nurse or stops automated calls, or an answer needs
a nurse, ``services.hand_to_nurse`` changes the step's channel to "nurse phone call" and gives it to
a nurse (the plan's assignment) — the state does not change. Retries are counted *per channel*
(``_apply_outcome`` counts records of the task's current channel), so the nurse has the plan's
full ``max_attempts``; when they are used up too the step ends *unreached* with a reason naming
both ("自动外呼3次、护士电话3次均未接通").

The stored ``Task.status`` is brought up to date by ``services.refresh_states`` (set-based UPDATEs,
once a minute). Between two runs the stored value of an open task may lag the calendar, so reads use
``current_status_expression`` (SQL) or ``time_state`` (Python): both apply the same boundaries,
defined once in ``time_state_conditions``.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from careloop.followup.choices import Outcome, TaskStatus

PENDING = TaskStatus.PENDING.value
DUE = TaskStatus.DUE.value
OVERDUE = TaskStatus.OVERDUE.value
DONE = TaskStatus.DONE.value
UNREACHED = TaskStatus.UNREACHED.value
LOST = TaskStatus.LOST.value
CANCELLED = TaskStatus.CANCELLED.value

OPEN: frozenset[str] = frozenset({PENDING, DUE, OVERDUE})
FINAL: frozenset[str] = frozenset({DONE, UNREACHED, LOST, CANCELLED})
#: Unfinished work a nurse can act on today.
ACTIONABLE: frozenset[str] = frozenset({DUE, OVERDUE})
#: Failures worth a second round of calls (二次外拨).
FAILED: frozenset[str] = frozenset({UNREACHED, LOST})

#: The allowed transitions, as data. Time moves open states forward only; final states are terminal.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({DUE, OVERDUE}) | FINAL,
    DUE: frozenset({OVERDUE}) | FINAL,
    OVERDUE: FINAL,
    DONE: frozenset(),
    UNREACHED: frozenset(),
    LOST: frozenset(),
    CANCELLED: frozenset(),
}

#: Outcomes that finish a task at once, and the state they lead to. ``no_answer`` and ``busy``
#: finish it only when the attempts are used up (→ unreached); ``call_back`` keeps it open.
OUTCOME_FINAL_STATE: dict[str, str] = {
    Outcome.REACHED.value: DONE,
    Outcome.WRONG_NUMBER.value: UNREACHED,
    Outcome.REFUSED.value: LOST,
    Outcome.DECEASED.value: CANCELLED,
}
#: Outcomes that count against the plan's attempts per step.
RETRY_OUTCOMES: frozenset[str] = frozenset({Outcome.NO_ANSWER.value, Outcome.BUSY.value})


class InvalidTransition(ValueError):
    """A state change the model does not allow (e.g. leaving a final state)."""


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    if not can_transition(current, new):
        raise InvalidTransition(f"a follow-up task cannot go from {current} to {new}")


def local_today(now: dt.datetime | None = None) -> dt.date:
    """The hospital's calendar date at ``now`` (aware), in the current time zone (Asia/Shanghai)."""
    return timezone.localdate(now or timezone.now())


def time_state_conditions(today: dt.date) -> dict[str, Q]:
    """The calendar boundaries of the open states, as filters on a Task queryset."""
    return {
        PENDING: Q(window_start__gt=today),
        DUE: Q(window_start__lte=today, deadline__gte=today),
        OVERDUE: Q(deadline__lt=today),
    }


def time_state(*, window_start: dt.date, deadline: dt.date, today: dt.date) -> str:
    """The open state of a task with this window on ``today`` (same rule as the SQL conditions)."""
    if today < window_start:
        return PENDING
    if today <= deadline:
        return DUE
    return OVERDUE


def current_status(status: str, *, window_start: dt.date, deadline: dt.date, today: dt.date) -> str:
    """A task's state on ``today``: a final stored status wins, an open one follows the calendar."""
    if status in FINAL:
        return status
    return time_state(window_start=window_start, deadline=deadline, today=today)


def current_status_expression(today: dt.date) -> Case:
    """``current_status`` as a SQL expression, for annotating, filtering and counting tasks."""
    conditions = time_state_conditions(today)
    return Case(
        When(status__in=sorted(FINAL), then=F("status")),
        When(conditions[PENDING], then=Value(PENDING)),
        When(conditions[DUE], then=Value(DUE)),
        default=Value(OVERDUE),
        output_field=CharField(),
    )


def status_filter(statuses: set[str] | frozenset[str], today: dt.date) -> Q:
    """Tasks whose current state (see above) is one of ``statuses``, without an annotation."""
    query = Q(pk__in=[])
    finals = sorted(set(statuses) & FINAL)
    if finals:
        query |= Q(status__in=finals)
    conditions = time_state_conditions(today)
    for state in sorted(set(statuses) & OPEN):
        query |= Q(status__in=sorted(OPEN)) & conditions[state]
    return query


def completed_on_time(
    *, completed_at: dt.datetime, window_start: dt.date, deadline: dt.date
) -> bool:
    """Whether a task finished on ``completed_at`` was finished within its window."""
    return window_start <= timezone.localdate(completed_at) <= deadline


def done_on_time_condition() -> Q:
    """Done tasks completed within their window, as a filter (same rule as ``completed_on_time``)."""
    completed_on = TruncDate("completed_at", tzinfo=timezone.get_current_timezone())
    return Q(status=DONE, window_start__lte=completed_on, deadline__gte=completed_on)
