"""Text-to-speech behind a small interface; eSpeak NG (Mandarin ``cmn``) is the built-in plugin.

A hospital can plug a better engine by implementing :class:`TtsEngine` (render text to a WAV
file) and registering it in :data:`TTS_ENGINES`. Rendering happens once per (engine, voice,
text): the WAV is cached on disk under its SHA-256 and reused across calls and restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

logger = logging.getLogger(__name__)


class TtsError(Exception):
    """The TTS engine is missing or failed to render a text."""


class TtsEngine(ABC):
    """Renders text to a WAV file in the cache directory."""

    name: str = "tts"
    default_voice: str = ""

    @property
    def cache_key(self) -> str:
        """Everything besides voice and text that changes the rendering (part of the cache key)."""
        return self.name

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def cache_path(self, digest: str) -> Path:
        return self.cache_dir / digest[:2] / f"{digest}.wav"

    async def render(self, text: str, *, voice: str, digest: str) -> Path:
        """Path of a WAV rendering of *text*, producing it if not cached yet."""
        path = self.cache_path(digest)
        if path.is_file() and path.stat().st_size > 44:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            await self.synthesize(text, voice, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @abstractmethod
    async def synthesize(self, text: str, voice: str, out: Path) -> None:
        """Write a WAV rendering of *text* to *out* (any sample rate; it is resampled)."""


class EspeakNgTts(TtsEngine):
    """eSpeak NG: offline, in the Debian archive, Mandarin with ``-v cmn``."""

    name = "espeak-ng"

    def __init__(
        self, cache_dir: Path, *, voice: str = "cmn", speed: int = 170, binary: str | None = None
    ) -> None:
        super().__init__(cache_dir)
        self.default_voice = voice
        self.speed = speed
        self.binary = binary or shutil.which("espeak-ng") or "espeak-ng"

    @property
    def cache_key(self) -> str:
        return f"{self.name}@{self.speed}"

    async def synthesize(self, text: str, voice: str, out: Path) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                "-v",
                voice,
                "-s",
                str(self.speed),
                "-w",
                str(out),
                "--stdin",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise TtsError("espeak-ng is not installed (Debian package espeak-ng)") from exc
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(text.encode("utf-8")), timeout=30)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise TtsError("espeak-ng took longer than 30 s") from exc
        if proc.returncode != 0 or not out.is_file():
            raise TtsError(
                f"espeak-ng failed ({proc.returncode}): {stderr.decode('utf-8', 'replace')[:200]}"
            )


TTS_ENGINES: dict[str, type[EspeakNgTts]] = {"espeak-ng": EspeakNgTts}


def make_tts(name: str, cache_dir: Path, *, voice: str, speed: int = 170) -> TtsEngine:
    """The TTS plugin called *name* (``espeak-ng`` unless another one is registered)."""
    try:
        cls = TTS_ENGINES[name]
    except KeyError as exc:
        raise TtsError(f"unknown TTS engine {name!r}; known: {', '.join(TTS_ENGINES)}") from exc
    return cls(cache_dir, voice=voice, speed=speed)
