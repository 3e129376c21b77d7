"""Process orchestration for ``careloop demo`` and ``careloop web``.

Embedded mode (DESIGN.md, "Processes") runs everything in one process tree: the ASGI web app
(uvicorn) in the main thread, the Huey consumer in threads of the same process — so it shares
the in-memory channel layer with the web app — and the telephony engine as a child process
when it is installed. Ctrl-C or SIGTERM stops all of them; the engine child is also told to
stop by the kernel if this process dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

ASGI_APP = "careloop.asgi:application"
Say = Callable[[str], object]  # prints one line for the person who started the command


class Stop(Exception):
    """Raised in the main thread when SIGINT or SIGTERM asks everything to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``Stop`` for the duration of the block.

    uvicorn installs its own handlers while it serves and re-raises the signal it caught after a
    graceful shutdown; that re-raised signal lands here, so the rest of the tree is stopped too.
    """
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to send SIGTERM to the child when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    """A child process of the tree, stopped with SIGTERM then SIGKILL."""

    name: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %ss, killing it", self.name, timeout)
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_child(name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Child:
    process = subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    return Child(name, process)


def engine_available() -> bool:
    """Whether the telephony engine package (``careloop.engine.cli``) is installed."""
    try:
        return importlib.util.find_spec("careloop.engine.cli") is not None
    except (ImportError, ValueError):
        return False


def engine_argv(*, data_dir: str, api_url: str = "", web_port: int | None = None) -> list[str]:
    """The ``careloop engine`` command line of embedded mode.

    The engine's command API listens where the web app expects it (``settings.ENGINE_URL``),
    unless that is the web server's own port. SIP listens on the engine's default
    (127.0.0.1:5060) unless ``CARELOOP_ENGINE_SIP_LISTEN`` says otherwise.
    """
    argv = [sys.executable, "-m", "careloop.cli", "engine", "--data-dir", data_dir]
    parts = urlsplit(api_url) if api_url else None
    if parts and parts.hostname and parts.port and parts.port != web_port:
        argv += ["--api-listen", f"{parts.hostname}:{parts.port}"]
    if web_port:
        # Call events come back to the contact center's webhook, signed with the API token.
        argv += ["--webhook-url", f"http://127.0.0.1:{web_port}/cc/engine/events/"]
    return argv


def start_engine(
    say: Say,
    *,
    data_dir: str,
    api_url: str = "",
    api_token: str = "",
    web_port: int | None = None,
    settle: float = 2.0,
    extra_env: dict[str, str] | None = None,
) -> Child | None:
    """Start ``careloop engine`` as a child; ``None`` (with a note) when absent or it fails."""
    if not engine_available():
        say("注意 Note: 电话引擎未安装，跳过。The telephony engine is not installed; skipped.")
        return None
    env = (
        {"CARELOOP_ENGINE_API_TOKEN": api_token, "CARELOOP_ENGINE_WEBHOOK_SECRET": api_token}
        if api_token
        else {}
    )
    env.update(extra_env or {})
    try:
        child = start_child(
            "engine", engine_argv(data_dir=data_dir, api_url=api_url, web_port=web_port), env=env
        )
    except OSError as exc:
        say(f"注意 Note: 电话引擎无法启动 The telephony engine could not start: {exc}")
        return None
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and child.alive():
        time.sleep(0.1)
    if not child.alive():
        say(
            "注意 Note: 电话引擎已退出，其余功能照常运行。"
            f"The telephony engine exited (code {child.process.returncode}); "
            "everything else keeps running."
        )
        return None
    return child


def simulator_argv(sip_listen: str) -> list[str]:
    """``careloop simulate-patients``: the demo's patients' phones (careloop/demo/simulator.py)."""
    # Patients listen a little before each answer, so the recordings hold the questions too.
    return [
        sys.executable,
        "-m",
        "careloop.cli",
        "simulate-patients",
        "--sip-listen",
        sip_listen,
        "--think-time",
        "2.5",
    ]


def _udp_port_taken(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return True
    return False


def start_simulator(say: Say, *, sip_listen: str, settle: float = 20.0) -> Child | None:
    """Start the patient simulator as a child and dial patients there (demo only).

    The web app and the worker live in this process, so ``settings.CC_PATIENT_DIAL`` set here is
    what every automated and click-to-call dial uses — unless ``CARELOOP_PATIENT_DIAL`` names a
    real route, which is kept.
    """
    if _udp_port_taken(sip_listen):
        say(
            f"注意 Note: {sip_listen} 已被占用，模拟患者未启动。"
            f"{sip_listen} is in use; the patient simulator was not started "
            "(careloop demo --simulator-sip HOST:PORT picks another address)."
        )
        return None
    try:
        child = start_child("patients", simulator_argv(sip_listen))
    except OSError as exc:
        say(f"注意 Note: 模拟患者无法启动 The patient simulator could not start: {exc}")
        return None
    # Ready when its engine listens for SIP (the worker dials as soon as it starts).
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and child.alive() and not _udp_port_taken(sip_listen):
        time.sleep(0.2)
    if not child.alive():
        say(
            "注意 Note: 模拟患者已退出 The patient simulator exited "
            f"(code {child.process.returncode}); automated calls will not be answered."
        )
        return None
    if not os.environ.get("CARELOOP_PATIENT_DIAL"):
        settings.CC_PATIENT_DIAL = f"sip:{{number}}@{sip_listen}"
    return child


def _engine_token() -> str:
    """The engine API's bearer token: the configured one, else a fresh one for this run.

    In embedded mode the web app lives in this process, so a generated token is handed to it
    through ``settings.ENGINE_TOKEN`` — the setting every caller of the engine API reads.
    """
    if not settings.ENGINE_TOKEN:
        settings.ENGINE_TOKEN = secrets.token_urlsafe(32)
    return str(settings.ENGINE_TOKEN)


@dataclass
class Worker:
    """The Huey consumer running in threads of this process (embedded mode)."""

    workers: int = 2
    consumer: Any = field(default=None, init=False)

    def start(self) -> None:
        from django.utils.module_loading import autodiscover_modules
        from huey.consumer import Consumer
        from huey.contrib.djhuey import HUEY

        # Background jobs live in each app's jobs.py (STYLE.md); tasks.py is Huey's default name.
        autodiscover_modules("jobs")
        autodiscover_modules("tasks")

        class ThreadConsumer(Consumer):  # type: ignore[misc]
            def _set_signal_handlers(self) -> None:
                """Signals belong to the web server in the main thread, not to the consumer."""

        self.consumer = ThreadConsumer(HUEY, workers=self.workers, worker_type="thread")
        self.consumer.start()

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer.huey.notify_interrupted_tasks()
            self.consumer = None


def serve(
    *,
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run uvicorn with the ASGI app until it is told to stop.

    The access log is off by default: URLs can carry search terms such as a patient's name.
    """
    import uvicorn

    # WhiteNoise hands Django's ASGI handler a synchronous file iterator; Django then reads it in a
    # thread, which is fine for static files, and says so once per process. Nothing to act on.
    warnings.filterwarnings(
        "ignore", message="StreamingHttpResponse must consume synchronous iterators"
    )
    if workers > 1:
        uvicorn.run(
            ASGI_APP,
            host=host,
            port=port,
            workers=workers,
            lifespan="off",
            access_log=access_log,
        )
        return
    config = uvicorn.Config(ASGI_APP, host=host, port=port, lifespan="off", access_log=access_log)
    server = uvicorn.Server(config)
    if on_started is not None:
        _call_when_started(server, on_started)
    server.run()


def _call_when_started(server: Any, callback: Callable[[], None]) -> None:
    def wait() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            callback()

    threading.Thread(target=wait, name="announce", daemon=True).start()


def start_sip_proxy(say: Say) -> tuple[Child, dict[str, str]] | None:
    """Kamailio for the agents' softphones (careloop/core/sipproxy.py) when it is installed,
    unless the engine's SIP address is set explicitly (``CARELOOP_ENGINE_SIP_LISTEN``) or
    ``CARELOOP_KAMAILIO=0``. Returns the child and the engine's environment behind it."""
    if os.environ.get("CARELOOP_ENGINE_SIP_LISTEN") or os.environ.get("CARELOOP_KAMAILIO") == "0":
        return None
    from careloop.contactcenter.services import sip_domain
    from careloop.core import sipproxy

    layout = sipproxy.SipLayout(host=os.environ.get("CARELOOP_SIP_HOST", "127.0.0.1"))
    child = sipproxy.start_kamailio(say, layout)
    if child is None:
        return None
    say(sipproxy.softphone_help(layout, sip_domain()))
    return child, layout.engine_env


def run_embedded(
    *,
    host: str,
    port: int,
    say: Say,
    engine: bool = True,
    worker_threads: int = 2,
    access_log: bool = False,
    on_started: Callable[[], None] | None = None,
    simulator: str = "",
) -> int:
    """Start engine, worker and web server; return when a signal stops them (exit status).

    ``simulator``: SIP address (HOST:PORT) of simulated patients' phones to start with the engine
    (``careloop demo``); empty for none.
    """
    children: list[Child] = []
    worker = Worker(workers=worker_threads)
    status = 0
    with stop_on_signals():
        try:
            if engine:
                engine_env: dict[str, str] = {}
                proxy = start_sip_proxy(say)
                if proxy is not None:
                    children.append(proxy[0])
                    engine_env = proxy[1]
                child = start_engine(
                    say,
                    data_dir=str(Path(settings.DATA_DIR) / "engine"),
                    api_url=settings.ENGINE_URL,
                    api_token=_engine_token(),
                    web_port=port,
                    extra_env=engine_env,
                )
                if child is not None:
                    children.append(child)
                    if simulator:
                        patients = start_simulator(say, sip_listen=simulator)
                        if patients is not None:
                            children.append(patients)
            worker.start()
            serve(host=host, port=port, access_log=access_log, on_started=on_started)
        except Stop as stop:
            logger.info("Received %s, stopping", signal.Signals(stop.signum).name)
        except SystemExit as exc:  # uvicorn exits when it cannot bind the port
            status = exc.code if isinstance(exc.code, int) else 1
        finally:
            with contextlib.suppress(Stop):
                worker.stop()
            for child in reversed(children):
                with contextlib.suppress(Stop):
                    child.stop()
    return status
