"""Fixtures for the telephony engine tests: an in-process engine, SIPp/baresip runners, events.

Everything binds to 127.0.0.1 on free ports; every external process runs with a hard timeout
and is killed at teardown, so a broken peer fails a test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from careloop.engine.config import EngineConfig
from careloop.engine.engine import Engine

HERE = Path(__file__).parent
SIPP_DIR = HERE / "sipp"
sys.path.insert(0, str(HERE))


def require_binary(name: str) -> str:
    """Path of a peer program; its absence is a failure (the suite needs real peers), not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed; run scripts/system-deps.sh (Debian packages sip-tester, baresip, kamailio, espeak-ng)"
        )
    return path


def free_port(kind: int = socket.SOCK_DGRAM, *, both: bool = True) -> int:
    """A port free for UDP (and TCP) on 127.0.0.1."""
    for _ in range(200):
        port = random.randint(20000, 59000)
        socks: list[socket.socket] = []
        try:
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM) if both else (kind,):
                s = socket.socket(socket.AF_INET, k)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def free_rtp_range(size: int = 400) -> tuple[int, int]:
    """A random even-aligned RTP range (tests run in parallel with other engines)."""
    base = random.randrange(20000, 60000 - size, 2)
    return base, base + size


@dataclass
class EventLog:
    """Collects the engine's events for assertions."""

    items: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._changed.set()

    def of(self, event_type: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.items
            if e["type"] == event_type and (call_id is None or e["call_id"] == call_id)
        ]

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
        *,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in self.items:
                if item["type"] == event_type and predicate(item):
                    return item
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [e["type"] for e in self.items][-30:]
                raise AssertionError(
                    f"no {event_type} event within {timeout}s; last events: {seen}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


@dataclass
class RunningEngine:
    engine: Engine
    events: EventLog
    port: int
    data_dir: Path

    @property
    def sip_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def path_of(self, call_id: str) -> list[str]:
        return [e["data"]["node"] for e in self.events.of("flow.step", call_id)]


@pytest.fixture(scope="session")
def tts_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_binary("espeak-ng")
    return tmp_path_factory.mktemp("tts-cache")


@pytest.fixture
async def start_engine(tmp_path: Path, tts_cache: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start engines in this test's event loop: ``await start_engine(flow_path=..., ...)``."""
    running: list[tuple[Engine, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> RunningEngine:
        clock = overrides.pop("clock", None)
        port = overrides.pop("sip_port", None) or free_port()
        data_dir = overrides.pop("data_dir", None) or tmp_path / f"engine-{len(running)}"
        config = EngineConfig(
            sip_listen=("127.0.0.1", port),
            rtp_ports=free_rtp_range(),
            data_dir=data_dir,
            tts_cache_dir=tts_cache,
            tts_speed=overrides.pop("tts_speed", 420),
            unanswered_timeout=overrides.pop("unanswered_timeout", 20.0),
            **overrides,
        )
        engine = Engine(config, clock=clock)
        log = EventLog()
        sub = engine.bus.subscribe()

        async def pump() -> None:
            async for item in sub:
                log.add(item)

        task = asyncio.get_running_loop().create_task(pump())
        await engine.start()
        running.append((engine, task))
        return RunningEngine(engine, log, engine.sip.bound_port(), data_dir)

    yield start
    for engine, task in running:
        await engine.stop()
        task.cancel()


@dataclass
class ProcessResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def errors_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))


def render_scenario(name: str, workdir: Path, **subs: str) -> Path:
    """Copy a SIPp scenario from tests/engine/sipp with ``@KEY@`` placeholders filled."""
    text = (SIPP_DIR / name).read_text()
    for key, value in subs.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.search(r"@[A-Z_]+@", text)
    assert leftover is None, (
        f"unfilled placeholder {leftover.group(0) if leftover else ''} in {name}"
    )
    out = workdir / name
    out.write_text(text)
    return out


async def run_process(args: list[str], *, cwd: Path, timeout: float) -> ProcessResult:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        stdout, stderr = await proc.communicate()
        return ProcessResult(
            -9,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace") + "\n[killed: timeout]",
            cwd,
        )
    return ProcessResult(
        proc.returncode or 0, stdout.decode(errors="replace"), stderr.decode(errors="replace"), cwd
    )


class Sipp:
    """Runs SIPp scenarios against (or for) the engine."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("sipp")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)

    def base_args(self, scenario: Path, *, port: int, media_port: int, calls: int) -> list[str]:
        return [
            self.binary,
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(media_port),
            "-m",
            str(calls),
            "-nostdin",
            "-trace_err",
            "-timeout_error",
        ]

    async def call(
        self,
        scenario: Path,
        target: str,
        *,
        service: str = "ivr",
        calls: int = 1,
        rate: float | None = None,
        limit: int | None = None,
        timeout: float = 60.0,
        transport: str = "u1",
        extra: list[str] | None = None,
    ) -> ProcessResult:
        """Place *calls* calls from a UAC scenario to *target* (host:port)."""
        args = self.base_args(
            scenario, port=free_port(), media_port=free_rtp_range(10)[0], calls=calls
        )
        args += ["-s", service, "-t", transport, "-timeout", f"{int(timeout)}s"]
        if rate is not None:
            args += ["-r", str(rate)]
        if limit is not None:
            args += ["-l", str(limit)]
        args += (extra or []) + [target]
        return await run_process(args, cwd=self.workdir, timeout=timeout + 10)

    async def serve(
        self, scenario: Path, *, port: int, calls: int = 1, timeout: float = 60.0
    ) -> asyncio.Task[ProcessResult]:
        """Run a UAS scenario on *port* in the background; await the task for its result."""
        args = self.base_args(scenario, port=port, media_port=free_rtp_range(10)[0], calls=calls)
        args += ["-timeout", f"{int(timeout)}s"]
        task = asyncio.get_running_loop().create_task(
            run_process(args, cwd=self.workdir, timeout=timeout + 10)
        )
        await asyncio.sleep(0.3)  # SIPp binds quickly; give it a moment before we dial it
        return task


@pytest.fixture
def sipp(tmp_path: Path) -> Sipp:
    return Sipp(tmp_path / "sipp")


@pytest.fixture
def engine_env() -> dict[str, str]:
    """Environment for running ``python -m careloop.engine`` as a subprocess."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = str(HERE.parent.parent)
    return env


class Baresip:
    """A baresip softphone as the agent: auto-answers, talks a sine tone, dumps what it hears."""

    def __init__(
        self, workdir: Path, *, tone_hz: float = 700.0, account: str | None = None
    ) -> None:
        self.binary = require_binary("baresip")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tone_hz = tone_hz
        self.account = (
            account
            or f"<sip:agent@127.0.0.1:{self.port}>;regint=0;answermode=auto;audio_codecs=PCMA,PCMU"
        )
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"sip:agent@127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        import numpy as np
        import soundfile as sf

        t = np.arange(8000 * 120) / 8000
        sf.write(
            self.workdir / "talk.wav",
            (0.3 * np.sin(2 * np.pi * self.tone_hz * t) * 32767).astype("int16"),
            8000,
            subtype="PCM_16",
        )
        (self.workdir / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.port}",
                    f"audio_player aufile,{self.workdir}/unused.wav",
                    f"audio_source aufile,{self.workdir}/talk.wav",
                    f"audio_alert aufile,{self.workdir}/talk.wav",
                    "ausrc_srate 8000",
                    "auplay_srate 8000",
                    "ausrc_channels 1",
                    "auplay_channels 1",
                    "module_path /usr/lib/baresip/modules",
                    "module g711.so",
                    "module aufile.so",
                    "module sndfile.so",
                    f"snd_path {self.workdir}",
                    "module_app account.so",
                    "module_app menu.so",
                    "",
                ]
            )
        )
        (self.workdir / "accounts").write_text(self.account + "\n")

    async def start(self, *, ready_text: str = "baresip is ready", timeout: float = 10.0) -> None:
        self._write_config()
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-f",
            str(self.workdir),
            cwd=str(self.workdir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=open(self.workdir / "baresip.log", "wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ready_text not in self.log():
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"baresip did not start:\n{self.log()}")
            await asyncio.sleep(0.1)

    def log(self) -> str:
        path = self.workdir / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def heard(self) -> Path:
        """The audio baresip received (its decode dump), for the last call."""
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert dumps, f"baresip dumped no audio:\n{self.log()}"
        return dumps[-1]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def baresip_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    phones: list[Baresip] = []

    async def make(name: str = "agent", **kwargs: Any) -> Baresip:
        phone = Baresip(tmp_path / f"baresip-{name}", **kwargs)
        phones.append(phone)
        await phone.start()
        return phone

    yield make
    for phone in phones:
        await phone.stop()


class Kamailio:
    """Kamailio as registrar/proxy (tests/engine/kamailio/kamailio.cfg) with digest users."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        self.binary = require_binary("kamailio")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log(self) -> str:
        path = self.workdir / "kamailio.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        users = "\n".join(
            f'    $sht(users=>{user}) = "{password}";' for user, password in self.users.items()
        )
        cfg = (
            (HERE / "kamailio" / "kamailio.cfg")
            .read_text()
            .replace("@PORT@", str(self.port))
            .replace("@USERS@", users)
        )
        (self.workdir / "kamailio.cfg").write_text(cfg)
        (self.workdir / "run").mkdir(exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-f",
            str(self.workdir / "kamailio.cfg"),
            "-DD",
            "-E",
            "-Y",
            str(self.workdir / "run"),
            "-m",
            "32",
            "-M",
            "8",
            cwd=str(self.workdir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=open(self.workdir / "kamailio.log", "wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        # Ready once it answers an OPTIONS-less probe: wait for its UDP socket to be bound
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                break  # bound by Kamailio
            finally:
                probe.close()
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"kamailio did not start:\n{self.log()}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def kamailio(tmp_path: Path) -> AsyncIterator[Kamailio]:
    proxy = Kamailio(tmp_path / "kamailio", {"engine": "engine-secret", "agent": "agent-secret"})
    await proxy.start()
    yield proxy
    await proxy.stop()
