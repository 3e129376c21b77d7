"""Prompts: 8 kHz mono PCM loaded from WAV files, rendered by TTS, or synthesised (tones, MOH).

A prompt is decoded and resampled once, split into 20 ms frames, and encoded to each G.711 law
the first time a leg needs it, so playing a prompt to hundreds of legs costs one slice per
frame per leg.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from aiortp import get_codec

from careloop.engine.tts import TtsEngine

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE_FRAME = bytes(FRAME_BYTES)


class PromptError(Exception):
    """A prompt could not be loaded or rendered (missing file, bad audio, TTS failure)."""


def resample_to_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample float mono audio to 8 kHz: windowed-sinc low-pass, then interpolation.

    Good enough for speech prompts and keeps the engine free of a resampler dependency.
    """
    if rate == SAMPLE_RATE:
        return samples
    if rate > SAMPLE_RATE:
        cutoff = 0.45 * SAMPLE_RATE / rate  # normalised to the source rate
        taps = 127
        n = np.arange(taps) - (taps - 1) / 2
        kernel = np.sinc(2 * cutoff * n) * np.hamming(taps)
        kernel /= kernel.sum()
        samples = np.convolve(samples, kernel, mode="same")
    duration = len(samples) / rate
    count = round(duration * SAMPLE_RATE)
    positions = np.arange(count) * (rate / SAMPLE_RATE)
    return np.asarray(np.interp(positions, np.arange(len(samples)), samples), dtype=np.float64)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to s16le bytes."""
    clipped = np.clip(samples, -1.0, 1.0)
    return bytes((clipped * 32767.0).astype("<i2").tobytes())


class Prompt:
    """An immutable 8 kHz mono audio clip, framed for RTP."""

    def __init__(self, pcm: bytes, name: str = "") -> None:
        if len(pcm) % FRAME_BYTES:
            pcm += bytes(FRAME_BYTES - len(pcm) % FRAME_BYTES)
        self.pcm = pcm
        self.name = name
        self.frames: list[bytes] = [
            pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)
        ]
        self._encoded: dict[int, list[bytes]] = {}

    @property
    def duration(self) -> float:
        return len(self.frames) * FRAME_SAMPLES / SAMPLE_RATE

    def encoded(self, payload_type: int) -> list[bytes]:
        """The frames in the given G.711 law, encoded on first use and cached."""
        cached = self._encoded.get(payload_type)
        if cached is None:
            codec = get_codec(payload_type)
            payload = codec.encode(self.pcm)
            step = len(payload) // max(1, len(self.frames))
            cached = [payload[i * step : (i + 1) * step] for i in range(len(self.frames))]
            self._encoded[payload_type] = cached
        return cached

    @classmethod
    def from_samples(cls, samples: np.ndarray, name: str = "") -> Prompt:
        return cls(to_pcm16(samples), name)


def silence(ms: int) -> Prompt:
    """*ms* milliseconds of silence."""
    return Prompt(bytes(FRAME_BYTES * max(1, ms // 20)), f"silence:{ms}")


def tone(freq: float, ms: int, level: float = 0.3) -> Prompt:
    """A sine tone with short fades (the record beep)."""
    count = SAMPLE_RATE * ms // 1000
    t = np.arange(count) / SAMPLE_RATE
    wave = level * np.sin(2 * np.pi * freq * t)
    fade = min(80, count // 4)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return Prompt.from_samples(wave, f"tone:{freq}:{ms}")


def default_music_on_hold() -> Prompt:
    """A gentle eight-second arpeggio, used when no MOH file is configured."""
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23]
    parts = []
    for freq in notes:
        count = SAMPLE_RATE
        t = np.arange(count) / SAMPLE_RATE
        envelope = np.exp(-3.0 * t)
        parts.append(
            0.18 * envelope * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t))
        )
    return Prompt.from_samples(np.concatenate(parts), "moh:default")


def read_audio_file(path: Path) -> Prompt:
    """Load a WAV (or any libsndfile format) prompt, downmixed and resampled to 8 kHz."""
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise PromptError(f"cannot read audio file {path.name}: {exc}") from exc
    if data.size == 0:
        raise PromptError(f"audio file {path.name} is empty")
    mono = data.mean(axis=1)
    return Prompt.from_samples(resample_to_8k(mono, int(rate)), path.name)


class PromptLibrary:
    """Loads and caches prompts; renders TTS once per (voice, text) and keeps it on disk."""

    def __init__(self, prompt_dir: Path, tts: TtsEngine, *, cache_size: int = 256) -> None:
        self.prompt_dir = prompt_dir
        self.tts = tts
        self._cache: collections.OrderedDict[str, Prompt] = collections.OrderedDict()
        self._cache_size = cache_size
        self._locks: dict[str, asyncio.Lock] = {}

    def _remember(self, key: str, prompt: Prompt) -> Prompt:
        self._cache[key] = prompt
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return prompt

    def resolve_path(self, name: str) -> Path:
        """A prompt file by name (relative to the prompt directory) or absolute path."""
        path = Path(name)
        if not path.is_absolute():
            candidate = (self.prompt_dir / path).resolve()
            if self.prompt_dir.resolve() not in candidate.parents:
                raise PromptError(f"prompt {name!r} is outside the prompt directory")
            path = candidate
        if not path.is_file():
            raise PromptError(f"prompt file {name!r} not found")
        return path

    async def file(self, name: str) -> Prompt:
        path = self.resolve_path(name)
        stat = path.stat()
        key = f"file:{path}:{stat.st_mtime_ns}:{stat.st_size}"
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        prompt = await asyncio.to_thread(read_audio_file, path)
        return self._remember(key, prompt)

    async def speech(self, text: str, voice: str | None = None) -> Prompt:
        """TTS of *text*; rendered once, then served from memory or the disk cache."""
        voice = voice or self.tts.default_voice
        digest = hashlib.sha256(f"{self.tts.cache_key}|{voice}|{text}".encode()).hexdigest()
        key = f"tts:{digest}"
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            path = await self.tts.render(text, voice=voice, digest=digest)
            prompt = await asyncio.to_thread(read_audio_file, path)
            prompt.name = f"tts:{digest[:12]}"
            self._locks.pop(key, None)
            return self._remember(key, prompt)

    async def digits(self, digits: str, voice: str | None = None) -> Prompt:
        """Read a digit string one digit at a time (card numbers, amounts)."""
        spoken = " ".join(ch for ch in digits if ch.isalnum())
        return await self.speech(spoken or "0", voice)
