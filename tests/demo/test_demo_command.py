"""``careloop demo`` as a user runs it: one command, a fresh database, log in, Ctrl-C.

The command runs as a real child process (web server, worker threads and, when it starts, the
telephony engine) on free ports and a temporary data directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from careloop.demo import data

START_TIMEOUT = 240  # migrations and seeding of a small demo on a slow CI machine
STOP_TIMEOUT = 30


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _children(pid: int) -> list[int]:
    """Ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _listening_on(address: str) -> list[int]:
    """Processes whose command line has ``--sip-listen address`` (the simulated patients' engine)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"--sip-listen" in args
            and address.encode() in args
            and _alive(int(cmdline.parent.name))
        ):
            found.append(int(cmdline.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_up(demo: Demo) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if demo.process.poll() is not None:
            pytest.fail(f"careloop demo exited with {demo.process.returncode}:\n{demo.output()}")
        try:
            if httpx.get(f"{demo.url}/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"careloop demo did not answer within {START_TIMEOUT}s:\n{demo.output()}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    data_dir = tmp_path / "data"
    # The settings module opens the Huey SQLite file in the data directory at import time.
    data_dir.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "CARELOOP_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'careloop.sqlite3'}",
        "CARELOOP_ENGINE_URL": f"http://127.0.0.1:{_free_port()}",
        "CARELOOP_ENGINE_SIP_LISTEN": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
        "CARELOOP_SIMULATOR_SIP_LISTEN": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # embedded mode
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "careloop.cli", "demo", "--port", str(port), "--patients", "60"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    demo = Demo(process, f"http://127.0.0.1:{port}", log)
    try:
        yield demo
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_demo_starts_everything_serves_the_app_and_stops_on_sigterm(demo: Demo) -> None:
    _wait_until_up(demo)
    children = _children(demo.process.pid)

    with httpx.Client(base_url=demo.url, timeout=10) as client:
        login_page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert token, login_page.text
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', login_page.text):
            assert client.get(asset).status_code == 200, asset

        logged_in = client.post(
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": "nurse_cardio",
                "password": data.PASSWORD,
            },
            headers={"Referer": f"{demo.url}/accounts/login/"},
        )
        assert logged_in.status_code == 302, logged_in.text
        home = client.get(logged_in.headers["location"])
        assert home.status_code == 200
        assert "李静" in home.text  # nurse_cardio's name in the page header

    output = demo.output()
    assert demo.url in output
    assert data.PASSWORD in output
    assert all(name in output for name in data.LOGIN_ROLES)
    assert '"event": "ready"' in output or "telephony engine" in output
    if '"event": "ready"' in output:  # the engine runs: so do the simulated patients
        assert "Simulated patients: SIP 127.0.0.1:" in output
        assert "outreach/policy/" in output

    simulator = re.search(r"Simulated patients: SIP (\S+)", output)
    if simulator:  # the simulator and its own engine
        assert len(_listening_on(simulator.group(1))) == 2, output
    demo.process.send_signal(signal.SIGTERM)
    assert demo.process.wait(STOP_TIMEOUT) == 0, demo.output()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "a child outlived careloop demo"
    # The simulated patients' own engine (a grandchild) is gone too.
    if simulator:
        deadline = time.monotonic() + 10
        while _listening_on(simulator.group(1)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening_on(simulator.group(1)), "the simulated patients' engine outlived"
    assert "CareLoop stopped" in demo.output()


def test_seed_demo_command_creates_the_hospital_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "CARELOOP_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'careloop.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "careloop.cli", "manage", "seed_demo", "--patients", "30"]
    subprocess.run(
        [sys.executable, "-m", "careloop.cli", "manage", "migrate", "-v0"],
        env=env,
        check=True,
        timeout=300,
    )
    created = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert created.returncode == 0, created.stderr
    assert "patients: 30" in created.stdout
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stdout
