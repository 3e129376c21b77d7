"""Call detail records: a durable journal of legs in progress and the final CDR file.

Two append-only JSON-lines files under ``<data>/cdr/``:

* ``journal.jsonl`` — ``start`` / ``update`` / ``end`` operations of legs in progress;
* ``cdr.jsonl`` — one final record per leg (the format is documented in docs/engine.md).

Writes go through one background thread that batches them and ``fsync``s each batch, so the
event loop never waits on the disk and a killed engine loses at most the current batch. On
start, :meth:`CdrJournal.recover` finalises every leg the journal shows as unfinished with
cause ``interrupted`` and attaches the partial recordings recovered from the same run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from careloop.engine.recorder import RecordingResult

logger = logging.getLogger(__name__)

CDR_FORMAT_VERSION = 1


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: str | None, end: str | None) -> float:
    a, b = parse_iso(start), parse_iso(end)
    if a is None or b is None:
        return 0.0
    return max(0.0, round((b - a).total_seconds(), 3))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                logger.warning("skipping unreadable line %d of %s", number, path.name)
                continue
            if isinstance(record, dict):
                yield record


class CdrJournal:
    """Durable CDR storage with crash recovery (see module docstring)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "cdr"
        self.journal_path = self.dir / "journal.jsonl"
        self.cdr_path = self.dir / "cdr.jsonl"
        self.heartbeat_path = self.dir / "heartbeat"
        self._queue: queue.Queue[tuple[str, str] | threading.Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.written = 0

    # ---- lifecycle

    def recover(self, recovered_recordings: list[RecordingResult]) -> list[dict[str, Any]]:
        """Finalise legs a previous run left open; returns their CDRs (already written)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        legs: dict[str, dict[str, Any]] = {}
        last_seen: dict[str, str] = {}
        for op in read_jsonl(self.journal_path):
            leg_id = op.get("leg_id")
            if not isinstance(leg_id, str):
                continue
            kind = op.get("op")
            if kind == "start":
                legs[leg_id] = dict(op.get("record", {}))
            elif kind == "update" and leg_id in legs:
                fields = op.get("fields", {})
                recordings = fields.pop("recording", None)
                legs[leg_id].update(fields)
                if recordings:
                    legs[leg_id].setdefault("recordings", []).append(recordings)
            elif kind == "end":
                legs.pop(leg_id, None)
            if isinstance(op.get("ts"), str):
                last_seen[leg_id] = op["ts"]
        heartbeat = self._read_heartbeat()
        by_call: dict[str, list[RecordingResult]] = {}
        for rec in recovered_recordings:
            for call_id in rec.call_ids:
                by_call.setdefault(call_id, []).append(rec)
        finished: list[dict[str, Any]] = []
        for leg_id, record in legs.items():
            ends = [t for t in (last_seen.get(leg_id), heartbeat) if t]
            end = (
                max(ends, key=lambda t: parse_iso(t) or datetime.min.replace(tzinfo=UTC))
                if ends
                else _now_iso()
            )
            recordings = {
                r["recording_id"]: r for r in record.get("recordings", []) if isinstance(r, dict)
            }
            for rec in by_call.get(leg_id, []):
                recordings[rec.recording_id] = {
                    "recording_id": rec.recording_id,
                    "path": rec.path,
                    "duration": rec.duration,
                    "mode": rec.mode,
                    "partial": True,
                }
            # A recording that was running must not claim to be longer than the call
            started = parse_iso(record.get("start"))
            for rec in by_call.get(leg_id, []):
                rec_start = parse_iso(rec.started_at)
                if started and rec_start:
                    candidate = (rec_start.timestamp() + rec.duration) - started.timestamp()
                    if candidate > seconds_between(record.get("start"), end):
                        end = (
                            datetime.fromtimestamp(started.timestamp() + candidate, UTC)
                            .isoformat(timespec="milliseconds")
                            .replace("+00:00", "Z")
                        )
            record["recordings"] = list(recordings.values())
            record.update(
                end=end,
                cause="interrupted",
                hangup_by="engine",
                interrupted=True,
                duration=seconds_between(record.get("start"), end),
                billsec=seconds_between(record.get("answer"), end) if record.get("answer") else 0.0,
            )
            finished.append(record)
        with open(self.cdr_path, "a", encoding="utf-8") as fh:
            for record in finished:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # Everything in the old journal is now final; start a fresh one
        if self.journal_path.exists():
            self.journal_path.unlink()
        if finished:
            logger.warning("finalised %d leg(s) interrupted by the previous run", len(finished))
        return finished

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._writer, name="cdr-writer", daemon=True)
        self._thread.start()
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        await self.flush()
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None
        # Clean shutdown: no leg is in progress, the journal has nothing left to recover
        if self.journal_path.exists():
            self.journal_path.unlink()

    async def flush(self) -> None:
        """Wait until everything queued so far is on disk."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        await asyncio.to_thread(done.wait, 10)

    # ---- operations

    def leg_started(self, leg_id: str, record: dict[str, Any]) -> None:
        self._journal({"op": "start", "leg_id": leg_id, "ts": _now_iso(), "record": record})

    def leg_updated(self, leg_id: str, **fields: Any) -> None:
        self._journal({"op": "update", "leg_id": leg_id, "ts": _now_iso(), "fields": fields})

    def leg_finished(self, record: dict[str, Any]) -> None:
        """Append the final CDR, then close the leg in the journal (in that order)."""
        self._queue.put(("cdr", json.dumps(record, ensure_ascii=False)))
        self._journal({"op": "end", "leg_id": record["leg_id"], "ts": _now_iso()})

    def _journal(self, op: dict[str, Any]) -> None:
        self._queue.put(("journal", json.dumps(op, ensure_ascii=False)))

    def _writer(self) -> None:
        files = {
            "journal": open(self.journal_path, "a", encoding="utf-8"),
            "cdr": open(self.cdr_path, "a", encoding="utf-8"),
        }
        try:
            running = True
            while running:
                items = [self._queue.get()]
                while len(items) < 1000:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                waiters: list[threading.Event] = []
                dirty: set[str] = set()
                for item in items:
                    if item is None:
                        running = False
                    elif isinstance(item, threading.Event):
                        waiters.append(item)
                    else:
                        name, line = item
                        files[name].write(line + "\n")
                        dirty.add(name)
                        if name == "cdr":
                            self.written += 1
                for name in dirty:
                    files[name].flush()
                    os.fsync(files[name].fileno())
                for waiter in waiters:
                    waiter.set()
        finally:
            for fh in files.values():
                fh.close()

    async def _heartbeat(self) -> None:
        # The last heartbeat bounds the end time of calls interrupted by a crash
        while True:
            await asyncio.to_thread(self._write_heartbeat)
            await asyncio.sleep(2.0)

    def _write_heartbeat(self) -> None:
        tmp = self.heartbeat_path.with_suffix(".tmp")
        tmp.write_text(_now_iso())
        os.replace(tmp, self.heartbeat_path)

    def _read_heartbeat(self) -> str | None:
        try:
            value = self.heartbeat_path.read_text().strip()
        except OSError:
            return None
        return value if parse_iso(value) else None

    def records(self, *, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Final CDRs (most recent last), optionally only those ending after *since*."""
        cutoff = parse_iso(since)
        out = []
        for record in read_jsonl(self.cdr_path):
            end = parse_iso(record.get("end"))
            if cutoff is not None and (end is None or end <= cutoff):
                continue
            out.append(record)
        return out[-limit:]
