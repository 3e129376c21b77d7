"""Outbound dialling (engine side of F4.9): campaigns with pacing, windows and retries.

A campaign dials a list of targets with at most ``concurrency`` calls up at once and at most
``cps`` new calls per second, only inside its calling windows (holidays excluded, make-up
working days included), retrying busy / unanswered / failed attempts after a delay. Each
answered call runs the campaign's flow. Every attempt ends in one ``dialer.attempt`` event
with its result (answered, no_answer, busy, rejected, unreachable, failed) and SIP code.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from careloop.engine import events as ev
from careloop.engine.flow import FlowDocument
from careloop.engine.schedule import Calendar, ScheduleError, Window

if TYPE_CHECKING:
    from careloop.engine.engine import Engine

logger = logging.getLogger(__name__)

RESULTS = ("answered", "no_answer", "busy", "rejected", "unreachable", "failed")


class CampaignError(ValueError):
    """The campaign definition is invalid (message says what)."""


@dataclass
class RetryPolicy:
    """Retry *retry_on* results up to *max_attempts* attempts in total, *delay* seconds apart."""

    max_attempts: int = 3
    delay: float = 600.0
    retry_on: tuple[str, ...] = ("busy", "no_answer", "failed")


@dataclass
class Target:
    id: str
    number: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class CampaignSpec:
    """What to dial and how (see docs/engine.md, "Campaigns")."""

    id: str
    targets: list[Target]
    flow: FlowDocument | None
    concurrency: int = 10
    cps: float = 1.0
    ring_timeout: float = 30.0
    caller: str | None = None
    windows: list[Window] = field(default_factory=list)
    calendar: Calendar = field(default_factory=Calendar)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    app_data: dict[str, Any] = field(default_factory=dict)
    window_poll: float = 30.0

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], flow: FlowDocument | None, default_tz: str
    ) -> CampaignSpec:
        try:
            targets_raw = raw["targets"]
            if not isinstance(targets_raw, list) or not targets_raw:
                raise CampaignError("targets: a non-empty list")
            targets = []
            seen: set[str] = set()
            for i, t in enumerate(targets_raw):
                if not isinstance(t, dict) or not isinstance(t.get("number"), str):
                    raise CampaignError(
                        f"targets[{i}]: an object with a 'number' (phone number or SIP URI)"
                    )
                tid = str(t.get("id", i))
                if tid in seen:
                    raise CampaignError(f"targets[{i}]: duplicate id {tid!r}")
                seen.add(tid)
                targets.append(Target(tid, t["number"], dict(t.get("variables", {}))))
            retry_raw = raw.get("retry", {})
            retry = RetryPolicy(
                max_attempts=int(retry_raw.get("max_attempts", 3)),
                delay=float(retry_raw.get("delay", 600)),
                retry_on=tuple(retry_raw.get("retry_on", ("busy", "no_answer", "failed"))),
            )
            unknown = set(retry.retry_on) - set(RESULTS)
            if unknown:
                raise CampaignError(f"retry.retry_on: unknown results {sorted(unknown)}")
            if retry.max_attempts < 1 or retry.delay < 0:
                raise CampaignError("retry: max_attempts >= 1 and delay >= 0")
            calendar = Calendar.from_dict(raw.get("calendar", {}), default_tz)
            windows = [Window.from_dict(w) for w in raw.get("windows", [])]
            spec = cls(
                id=str(raw.get("id") or uuid.uuid4().hex[:12]),
                targets=targets,
                flow=flow,
                concurrency=int(raw.get("concurrency", 10)),
                cps=float(raw.get("cps", 1.0)),
                ring_timeout=float(raw.get("ring_timeout", 30)),
                caller=raw.get("caller"),
                windows=windows,
                calendar=calendar,
                retry=retry,
                app_data=dict(raw.get("app_data", {})),
                window_poll=float(raw.get("window_poll", 30)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CampaignError):
                raise
            if isinstance(exc, ScheduleError):
                raise CampaignError(str(exc)) from exc
            raise CampaignError(f"invalid campaign: {exc}") from exc
        if spec.concurrency < 1 or spec.cps <= 0 or spec.ring_timeout <= 0:
            raise CampaignError("concurrency >= 1, cps > 0 and ring_timeout > 0")
        return spec


@dataclass
class TargetState:
    attempts: int = 0
    result: str | None = None
    sip_code: int | None = None
    call_ids: list[str] = field(default_factory=list)
    final: bool = False
    error: str = ""


class Campaign:
    """A running campaign; see module docstring."""

    def __init__(self, engine: Engine, spec: CampaignSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.state = "pending"
        self.targets: dict[str, TargetState] = {t.id: TargetState() for t in spec.targets}
        self._queue: list[tuple[float, int, Target, int]] = []
        self._counter = itertools.count()
        self._active: set[asyncio.Task[None]] = set()
        self._resume = asyncio.Event()
        self._resume.set()
        self._wake = asyncio.Event()
        self._cancelled = False
        self._last_start = 0.0
        self.task: asyncio.Task[None] | None = None
        self.max_active = 0

    def counts(self) -> dict[str, int]:
        out = {r: 0 for r in RESULTS}
        out["pending"] = 0
        out["in_progress"] = len(self._active)
        for st in self.targets.values():
            if st.final and st.result:
                out[st.result] += 1
            elif not st.final:
                out["pending"] += 1
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "campaign_id": self.spec.id,
            "state": self.state,
            "counts": self.counts(),
            "max_concurrent": self.max_active,
            "targets": {
                tid: {
                    "attempts": st.attempts,
                    "result": st.result,
                    "sip_code": st.sip_code,
                    "final": st.final,
                    "call_ids": st.call_ids,
                    "error": st.error,
                }
                for tid, st in self.targets.items()
            },
        }

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.engine.publish(
                ev.CampaignChanged(
                    None, campaign_id=self.spec.id, state=state, counts=self.counts()
                )
            )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for target in self.spec.targets:
            heapq.heappush(self._queue, (now, next(self._counter), target, 1))
        self.task = loop.create_task(self._run(), name=f"campaign-{self.spec.id}")

    def pause(self) -> None:
        if self.state in ("running", "waiting_window"):
            self._resume.clear()
            self._set_state("paused")

    def resume(self) -> None:
        if self.state == "paused":
            self._resume.set()
            self._set_state("running")
            self._wake.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._resume.set()
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when a call ends, the campaign is resumed or cancelled."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._set_state("running")
        try:
            while (self._queue or self._active) and not self._cancelled:
                await self._resume.wait()
                if self._cancelled:
                    break
                if not self._queue or len(self._active) >= self.spec.concurrency:
                    await self._sleep(1.0)
                    continue
                due = self._queue[0][0]
                if due > loop.time():
                    await self._sleep(min(due - loop.time(), 1.0))
                    continue
                if self.spec.windows:
                    now = self.engine.now()
                    if not self.spec.calendar.is_open(now, self.spec.windows):
                        self._set_state("waiting_window")
                        nxt = self.spec.calendar.next_open(now, self.spec.windows)
                        wait = (nxt - now).total_seconds() if nxt else self.spec.window_poll
                        await self._sleep(min(max(wait, 0.05), self.spec.window_poll))
                        continue
                    if self.state == "waiting_window":
                        self._set_state("running")
                gap = 1.0 / self.spec.cps - (loop.time() - self._last_start)
                if gap > 0:
                    await asyncio.sleep(gap)
                    continue
                _, _, target, attempt = heapq.heappop(self._queue)
                self._last_start = loop.time()
                task = loop.create_task(self._attempt(target, attempt))
                self._active.add(task)
                self.max_active = max(self.max_active, len(self._active))
                task.add_done_callback(self._attempt_done)
        finally:
            if self._cancelled:
                for task in list(self._active):
                    task.cancel()
                for _, _, target, _ in self._queue:
                    st = self.targets[target.id]
                    if not st.final:
                        st.final = True
                        st.result = st.result or "failed"
                        st.error = st.error or "campaign cancelled"
                self._queue.clear()
                self._set_state("cancelled")
            else:
                self._set_state("finished")

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._active.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("campaign %s attempt crashed", self.spec.id, exc_info=task.exception())

    async def _attempt(self, target: Target, attempt: int) -> None:
        from careloop.engine.engine import EngineError

        st = self.targets[target.id]
        st.attempts = attempt
        app_data = dict(self.spec.app_data)
        app_data.update({"campaign_id": self.spec.id, "target_id": target.id, "attempt": attempt})
        sip_code: int | None = None
        try:
            leg = await self.engine.originate(
                target.number,
                caller=self.spec.caller,
                ring_timeout=self.spec.ring_timeout,
                app_data=app_data,
                flow=self.spec.flow,
                variables={
                    **target.variables,
                    "target_id": target.id,
                    "campaign_id": self.spec.id,
                    "attempt": attempt,
                },
            )
        except EngineError as exc:
            result, st.error = "failed", str(exc)
        else:
            st.call_ids.append(leg.id)
            result = await self.engine.wait_dial_result(leg)
            sip_code = leg.sip_code if result != "answered" else 200
            if result == "answered":
                await leg.ended.wait()
            elif result not in RESULTS:
                result = "failed"
        st.result = result
        st.sip_code = sip_code
        retry = (
            result in self.spec.retry.retry_on
            and attempt < self.spec.retry.max_attempts
            and not self._cancelled
        )
        st.final = not retry
        self.engine.publish(
            ev.DialerAttempt(
                st.call_ids[-1] if st.call_ids else None,
                campaign_id=self.spec.id,
                target_id=target.id,
                attempt=attempt,
                result=result,
                sip_code=sip_code,
                final=st.final,
            )
        )
        if retry:
            due = asyncio.get_running_loop().time() + self.spec.retry.delay
            heapq.heappush(self._queue, (due, next(self._counter), target, attempt + 1))


class Dialer:
    """All campaigns of the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.campaigns: dict[str, Campaign] = {}

    def start(self, spec: CampaignSpec) -> Campaign:
        if spec.id in self.campaigns and self.campaigns[spec.id].state not in (
            "finished",
            "cancelled",
        ):
            raise CampaignError(f"campaign {spec.id} is already running")
        campaign = Campaign(self.engine, spec)
        self.campaigns[spec.id] = campaign
        campaign.start()
        return campaign

    def get(self, campaign_id: str) -> Campaign | None:
        return self.campaigns.get(campaign_id)

    async def stop(self) -> None:
        for campaign in self.campaigns.values():
            campaign.cancel()
        tasks = [c.task for c in self.campaigns.values() if c.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
