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
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

logger = logging.getLogger(__name__)

ASGI_APP = "careloop.asgi:application"


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


def start_engine(out: TextIO, *, settle: float = 2.0) -> Child | None:
    """Start ``careloop engine`` as a child; ``None`` (with a note) when absent or it fails."""
    if not engine_available():
        out.write(
            "注意 Note: 电话引擎未安装，跳过。The telephony engine is not installed; skipped.\n"
        )
        return None
    try:
        child = start_child("engine", [sys.executable, "-m", "careloop.cli", "engine"])
    except OSError as exc:
        out.write(f"注意 Note: 电话引擎无法启动 The telephony engine could not start: {exc}\n")
        return None
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and child.alive():
        time.sleep(0.1)
    if not child.alive():
        out.write(
            "注意 Note: 电话引擎已退出，其余功能照常运行。"
            f"The telephony engine exited (code {child.process.returncode}); "
            "everything else keeps running.\n"
        )
        return None
    return child


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


def run_embedded(
    *,
    host: str,
    port: int,
    out: TextIO,
    engine: bool = True,
    worker_threads: int = 2,
    access_log: bool = False,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Start engine, worker and web server; return when a signal stops them (exit status)."""
    children: list[Child] = []
    worker = Worker(workers=worker_threads)
    status = 0
    with stop_on_signals():
        try:
            if engine:
                child = start_engine(out)
                if child is not None:
                    children.append(child)
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
