"""Call recording: raw capture during the call, Ogg/Opus once it stops.

During the call a recorder appends 16-bit 8 kHz PCM to ``<id>.pcm`` next to a ``<id>.json``
sidecar, once a second. That costs almost nothing per call and survives the engine being
killed: on restart :meth:`RecordingStore.recover` encodes whatever was captured and flags it
``partial``. When a recording stops, a low-priority worker thread encodes it to Ogg/Opus at
about 11 kbit/s (libopus, see careloop.engine.opus) and removes the raw files; the duration
reported is the sample count written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from careloop.engine import opus
from careloop.engine.prompts import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, SILENCE_FRAME

logger = logging.getLogger(__name__)

FLUSH_FRAMES = 50
# libsndfile maps compression level to Opus bitrate; 0.98 gives ~11 kbit/s at 8 kHz (measured)
OPUS_COMPRESSION_LEVEL = 0.98
ENCODE_BLOCK = SAMPLE_RATE * 30
SILENCE_RMS = 300.0


@dataclass
class RecordingResult:
    """A finished recording on disk."""

    recording_id: str
    path: str
    duration: float
    mode: str
    call_ids: list[str]
    bridge_id: str | None
    started_at: str
    partial: bool = False
    reason: str = "stopped"


@dataclass
class RecordingMeta:
    """The sidecar written when a recording starts (what recovery needs to finish it)."""

    recording_id: str
    mode: str
    call_ids: list[str]
    bridge_id: str | None
    started_at: str
    ogg_path: str
    sample_rate: int = SAMPLE_RATE
    extra: dict[str, Any] = field(default_factory=dict)


def encode_ogg_opus(pcm_path: Path, ogg_path: Path) -> int:
    """Encode raw s16le 8 kHz mono to Ogg/Opus; returns the number of samples written.

    libopus directly (see careloop.engine.opus for the measured reason), else libsndfile.
    """
    if opus.available():
        return opus.encode_file(pcm_path, ogg_path)
    return encode_with_soundfile(pcm_path, ogg_path)


def encode_with_soundfile(pcm_path: Path, ogg_path: Path) -> int:
    """The libsndfile encoder (~20x the CPU of :mod:`careloop.engine.opus`), used as fallback."""
    tmp = ogg_path.with_name(ogg_path.name + ".tmp")
    total = 0
    size = pcm_path.stat().st_size if pcm_path.exists() else 0
    with sf.SoundFile(
        str(tmp),
        "w",
        samplerate=SAMPLE_RATE,
        channels=1,
        format="OGG",
        subtype="OPUS",
        compression_level=OPUS_COMPRESSION_LEVEL,
    ) as out:
        if size >= 2:
            with open(pcm_path, "rb") as src:
                while True:
                    block = src.read(ENCODE_BLOCK * 2)
                    if len(block) < 2:
                        break
                    samples = np.frombuffer(block[: len(block) // 2 * 2], dtype="<i2")
                    out.write(samples)
                    total += samples.size
        if total == 0:
            # libsndfile cannot read back an Opus stream without audio; one silent frame
            out.write(np.zeros(FRAME_SAMPLES, dtype="<i2"))
            total = FRAME_SAMPLES
    os.replace(tmp, ogg_path)
    return total


class Recorder:
    """Captures one frame per media tick from *source* into a raw file."""

    def __init__(
        self,
        store: RecordingStore,
        meta: RecordingMeta,
        source: Callable[[], bytes | None],
        *,
        max_duration: float | None = None,
        detect_silence: bool = False,
    ) -> None:
        self.store = store
        self.meta = meta
        self.source = source
        self.max_frames = int(max_duration * SAMPLE_RATE / FRAME_SAMPLES) if max_duration else None
        self.detect_silence = detect_silence
        self.frames = 0
        self.silent_frames = 0
        self.voiced_frames = 0
        self._buffer = bytearray()
        self._fd: int | None = os.open(
            store.pcm_path(meta), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640
        )
        self.full = asyncio.Event()
        self.result: asyncio.Future[RecordingResult] = asyncio.get_running_loop().create_future()
        self.stopped = False
        self.on_stop: Callable[[], None] | None = None

    @property
    def id(self) -> str:
        return self.meta.recording_id

    @property
    def duration(self) -> float:
        return self.frames * FRAME_SAMPLES / SAMPLE_RATE

    def capture(self) -> None:
        if self.stopped or self.full.is_set():
            # At the time limit capture stops exactly, whenever the owner gets round to stop()
            return
        frame = self.source() or SILENCE_FRAME
        self._buffer += frame
        self.frames += 1
        if self.detect_silence:
            rms = float(np.sqrt(np.mean(np.frombuffer(frame, dtype="<i2").astype(np.float64) ** 2)))
            if rms < SILENCE_RMS:
                self.silent_frames += 1
            else:
                self.silent_frames = 0
                self.voiced_frames += 1
        if len(self._buffer) >= FLUSH_FRAMES * FRAME_BYTES:
            self._flush()
        if self.max_frames is not None and self.frames >= self.max_frames:
            self.full.set()

    def pad(self, ticks: int) -> None:
        for _ in range(ticks):
            if self.stopped or self.full.is_set():
                break
            self._buffer += SILENCE_FRAME
            self.frames += 1
            if self.max_frames is not None and self.frames >= self.max_frames:
                self.full.set()
        self._flush()

    def _flush(self) -> None:
        if self._fd is not None and self._buffer:
            os.write(self._fd, self._buffer)
            self._buffer.clear()

    def silence_seconds(self) -> float:
        return self.silent_frames * FRAME_SAMPLES / SAMPLE_RATE

    def stop(self, reason: str = "stopped") -> asyncio.Future[RecordingResult]:
        """Stop capturing and encode in the background; the future yields the result."""
        if self.stopped:
            return self.result
        self.stopped = True
        self.store.media_consumers.discard(self)
        self._flush()
        if self.on_stop is not None:
            self.on_stop()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        task = asyncio.get_running_loop().create_task(self.store._finish(self, reason))
        task.add_done_callback(self._resolve)
        return self.result

    def _resolve(self, task: asyncio.Task[RecordingResult]) -> None:
        if self.result.done():
            return
        if task.cancelled():
            self.result.cancel()
        elif task.exception() is not None:
            self.result.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            self.result.set_result(task.result())


class RecordingStore:
    """Where recordings live (``<data>/recordings/YYYY/MM/DD/<id>.ogg``) and who encodes them."""

    def __init__(self, root: Path, media_consumers: set[Any], *, workers: int = 1) -> None:
        self.root = root
        self.media_consumers = media_consumers
        # A separate, niced process: encoding in a thread of the engine competes for the GIL,
        # and a niced thread holding the GIL stalled the media clock by up to 300 ms (measured)
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self.pending = 0

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=opus.lower_priority,
            )
        return self._executor

    def pcm_path(self, meta: RecordingMeta) -> Path:
        return Path(meta.ogg_path).with_suffix(".pcm")

    def meta_path(self, meta: RecordingMeta) -> Path:
        return Path(meta.ogg_path).with_suffix(".json")

    def start(
        self,
        recording_id: str,
        *,
        mode: str,
        call_ids: list[str],
        source: Callable[[], bytes | None],
        bridge_id: str | None = None,
        max_duration: float | None = None,
        detect_silence: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Recorder:
        now = datetime.now(UTC)
        folder = self.root / now.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        meta = RecordingMeta(
            recording_id=recording_id,
            mode=mode,
            call_ids=call_ids,
            bridge_id=bridge_id,
            started_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            ogg_path=str(folder / f"{recording_id}.ogg"),
            extra=extra or {},
        )
        self.meta_path(meta).write_text(json.dumps(asdict(meta), ensure_ascii=False))
        recorder = Recorder(
            self, meta, source, max_duration=max_duration, detect_silence=detect_silence
        )
        self.media_consumers.add(recorder)
        return recorder

    async def _finish(self, recorder: Recorder, reason: str) -> RecordingResult:
        meta = recorder.meta
        self.pending += 1
        try:
            samples = await asyncio.get_running_loop().run_in_executor(
                self._pool(), opus.encode_recording, str(self.pcm_path(meta)), meta.ogg_path
            )
        finally:
            self.pending -= 1
        self.pcm_path(meta).unlink(missing_ok=True)
        self.meta_path(meta).unlink(missing_ok=True)
        return RecordingResult(
            recording_id=meta.recording_id,
            path=meta.ogg_path,
            duration=samples / SAMPLE_RATE,
            mode=meta.mode,
            call_ids=meta.call_ids,
            bridge_id=meta.bridge_id,
            started_at=meta.started_at,
            reason=reason,
        )

    def recover(self) -> list[RecordingResult]:
        """Encode recordings a previous run left raw (it was killed); they are flagged partial."""
        results: list[RecordingResult] = []
        if not self.root.exists():
            return results
        for meta_file in sorted(self.root.rglob("*.json")):
            try:
                meta = RecordingMeta(**json.loads(meta_file.read_text()))
            except (ValueError, TypeError) as exc:
                logger.error("unreadable recording sidecar %s: %s", meta_file, exc)
                continue
            pcm = self.pcm_path(meta)
            ogg = Path(meta.ogg_path)
            try:
                samples = encode_ogg_opus(pcm, ogg)
            except (OSError, RuntimeError, sf.LibsndfileError) as exc:
                logger.error("could not recover recording %s: %s", meta.recording_id, exc)
                continue
            pcm.unlink(missing_ok=True)
            meta_file.unlink(missing_ok=True)
            logger.warning(
                "recovered partial recording %s (%.1f s)", meta.recording_id, samples / SAMPLE_RATE
            )
            results.append(
                RecordingResult(
                    recording_id=meta.recording_id,
                    path=str(ogg),
                    duration=samples / SAMPLE_RATE,
                    mode=meta.mode,
                    call_ids=meta.call_ids,
                    bridge_id=meta.bridge_id,
                    started_at=meta.started_at,
                    partial=True,
                    reason="interrupted",
                )
            )
        return results

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
