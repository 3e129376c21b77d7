"""Real peers for the contact-center tests: the engine process, SIPp as the patient, baresip as
the nurse's phone, Kamailio as the registrar. Sync wrappers around the engine suite's helpers
(tests/engine/conftest.py): Django's live server receives the engine's webhooks in a thread."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE_TESTS = ROOT / "tests" / "engine"
if str(ENGINE_TESTS) not in sys.path:
    sys.path.insert(0, str(ENGINE_TESTS))

from rtp_pcap import Tone, write_rtp_pcap  # noqa: E402


def _engine_helpers() -> Any:
    """tests/engine/conftest.py under its own name (``conftest`` is the root one here)."""
    name = "careloop_engine_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ENGINE_TESTS / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_helpers = _engine_helpers()
Baresip = _helpers.Baresip
Kamailio = _helpers.Kamailio
free_port = _helpers.free_port
free_rtp_range = _helpers.free_rtp_range
render_scenario = _helpers.render_scenario
require_binary = _helpers.require_binary


@pytest.fixture(autouse=True)
def contact_hours_all_day(request: pytest.FixtureRequest) -> None:
    """Nurses' calls are placed whenever the suite runs: the contact policy's hours
    (careloop.outreach) are the whole day (00:00-23:59); tests of the policy set their own."""
    if request.node.get_closest_marker("django_db") is None:
        return
    from careloop.outreach.models import ContactPolicy

    every_day = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]
    ContactPolicy.objects.update_or_create(pk=1, defaults={"windows": every_day})


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.1)


class EngineProcess:
    """``python -m careloop.engine`` with its command API and webhook to the live server."""

    def __init__(
        self,
        workdir: Path,
        webhook_url: str,
        *,
        extra: list[str] | None = None,
        sip_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.token = secrets.token_urlsafe(16)
        self.secret = secrets.token_urlsafe(16)
        self.sip_port = sip_port or free_port()
        self.api_port = free_port()
        low, high = free_rtp_range()
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env["PYTHONPATH"] = str(ROOT)
        env["CARELOOP_ENGINE_API_TOKEN"] = self.token
        env["CARELOOP_ENGINE_WEBHOOK_SECRET"] = self.secret
        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr = open(workdir / "engine.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "careloop.engine",
                "--sip-listen",
                f"127.0.0.1:{self.sip_port}",
                "--rtp-ports",
                f"{low}-{high}",
                "--api-listen",
                f"127.0.0.1:{self.api_port}",
                "--webhook-url",
                webhook_url,
                "--data-dir",
                str(self.data_dir),
                *(extra or []),
            ],
            env=env,
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line:
            raise AssertionError(f"engine did not start:\n{self.log()}")
        ready = json.loads(line)
        assert ready["event"] == "ready", line
        self.url = ready["api"]

    def log(self) -> str:
        return (self.workdir / "engine.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@pytest.fixture
def engine_factory(tmp_path: Path, live_server, settings) -> Iterator[Callable[..., EngineProcess]]:
    """Start the engine and point the application's settings at it."""
    started: list[EngineProcess] = []

    def start(
        extra: list[str] | None = None, sip_port: int | None = None, app_url: str | None = None
    ) -> EngineProcess:
        engine = EngineProcess(
            tmp_path / f"engine-{len(started)}",
            f"{app_url or live_server.url}/cc/engine/events/",
            extra=extra,
            sip_port=sip_port,
        )
        started.append(engine)
        settings.ENGINE_URL = engine.url
        settings.ENGINE_TOKEN = engine.token
        settings.ENGINE_WEBHOOK_SECRET = engine.secret
        settings.CC_ENGINE_DATA_DIR = str(engine.data_dir)
        return engine

    yield start
    for engine in started:
        engine.stop()


class PatientPhone:
    """SIPp answering the engine's INVITE as the patient, talking a 440 Hz tone."""

    def __init__(
        self,
        workdir: Path,
        *,
        scenario: str = "uas_answer.xml",
        seconds: int = 30,
        subs: dict[str, str] | None = None,
    ) -> None:
        self.binary = require_binary("sipp")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        pcap = workdir / "patient.pcap"
        write_rtp_pcap(pcap, [Tone(440, seconds * 1000, level=0.3)])
        if subs is None:
            subs = {"PCAP": str(pcap), "BYE_TIMEOUT": str(seconds * 1000 + 10000)}
        path = render_scenario(scenario, workdir, **subs)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-sf",
                str(path),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_rtp_range(10)[0]),
                "-m",
                "1",
                "-nostdin",
                "-trace_err",
                "-timeout_error",
                "-timeout",
                f"{seconds + 20}s",
            ],
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.3)

    def dial_pattern(self) -> str:
        return "sip:{number}@127.0.0.1:" + str(self.port)

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        errors = "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))
        return self.proc.returncode, out.decode(errors="replace")[-2000:] + errors

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def patient_phone(tmp_path: Path, settings) -> Iterator[Callable[..., PatientPhone]]:
    phones: list[PatientPhone] = []

    def make(**kwargs: Any) -> PatientPhone:
        phone = PatientPhone(tmp_path / f"sipp-{len(phones)}", **kwargs)
        phones.append(phone)
        settings.CC_PATIENT_DIAL = phone.dial_pattern()
        return phone

    yield make
    for phone in phones:
        phone.stop()


class NursePhone(Baresip):
    """baresip (auto-answer, 700 Hz tone) started synchronously."""

    def start_sync(self, *, ready_text: str = "baresip is ready", timeout: float = 10.0) -> None:
        for _attempt in range(3):
            try:
                self._start_once(ready_text=ready_text, timeout=timeout)
                return
            except AssertionError:
                if "Address already in use" not in self.log():
                    raise
                # baresip also binds TLS on port + 1, which free_port() did not check
                self.log_file.close()
                old, self.port = self.port, free_port()
                self.account = self.account.replace(f"127.0.0.1:{old}", f"127.0.0.1:{self.port}")
        raise AssertionError(f"baresip found no free port:\n{self.log()}")

    def _start_once(self, *, ready_text: str, timeout: float) -> None:
        self._write_config()
        self.log_file = open(self.workdir / "baresip.log", "wb")
        self.popen = subprocess.Popen(
            [self.binary, "-f", str(self.workdir)],
            cwd=str(self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while ready_text not in self.log():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"baresip did not start:\n{self.log()}")
            time.sleep(0.1)

    def stop_sync(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log_file.close()


@pytest.fixture
def nurse_phone(tmp_path: Path) -> Iterator[Callable[..., NursePhone]]:
    phones: list[NursePhone] = []

    def make(
        name: str = "nurse", *, ready_text: str = "baresip is ready", **kwargs: Any
    ) -> NursePhone:
        phone = NursePhone(tmp_path / f"baresip-{name}", **kwargs)
        phones.append(phone)
        phone.start_sync(ready_text=ready_text)
        return phone

    yield make
    for phone in phones:
        phone.stop_sync()


class KamailioProcess:
    """Kamailio running the configuration written by careloop.contactcenter.kamailio."""

    def __init__(self, cfg: Path) -> None:
        self.binary = require_binary("kamailio")
        self.workdir = cfg.parent
        (self.workdir / "run").mkdir(exist_ok=True)
        self.log_file = open(self.workdir / "kamailio.log", "wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-f",
                str(cfg),
                "-DD",
                "-E",
                "-Y",
                str(self.workdir / "run"),
                "-m",
                "32",
                "-M",
                "8",
            ],
            cwd=str(self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: (self.workdir / "kamailio_ctl").exists() or self.proc.poll() is not None,
            timeout=10,
            what="kamailio's control socket",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"kamailio did not start:\n{self.log()}")
        time.sleep(0.3)

    def log(self) -> str:
        return (self.workdir / "kamailio.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


@pytest.fixture
def kamailio_factory() -> Iterator[Callable[[Path], KamailioProcess]]:
    started: list[KamailioProcess] = []

    def start(cfg: Path) -> KamailioProcess:
        proxy = KamailioProcess(cfg)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[str]:
    """The ASGI application (HTTP + websockets) under uvicorn in a thread; returns its base URL.
    The in-memory test database is shared-cache, so its threads see the test's rows."""
    import threading

    import uvicorn
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from careloop.routing import websocket_urlpatterns

    app = ProtocolTypeRouter(
        {
            "http": ASGIStaticFilesHandler(get_asgi_application()),
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
