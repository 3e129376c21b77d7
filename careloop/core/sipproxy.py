"""Kamailio in embedded mode (``careloop demo``): the registrar the agents' softphones use.

When the Debian package ``kamailio`` is installed, the demo writes CareLoop's Kamailio
configuration (careloop/contactcenter/kamailio.py) and runs Kamailio as a child: agents' phones
register at ``<sip host>:5060``, the engine moves to port 5070 and sends its calls through
Kamailio (``--outbound-proxy``), calls from outside to the follow-up number are passed to the
engine. Accounts set up on the "My phone" page are loaded into the running Kamailio by the
presence job within a minute.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass

from careloop.core.runner import Child, Say, start_child

KAMAILIO_PORT = 5060
ENGINE_PORT = 5070


@dataclass(frozen=True)
class SipLayout:
    """Where Kamailio and the engine listen in embedded mode."""

    host: str = "127.0.0.1"
    kamailio_port: int = KAMAILIO_PORT
    engine_port: int = ENGINE_PORT

    @property
    def engine_env(self) -> dict[str, str]:
        """The engine's settings when it sits behind Kamailio."""
        return {
            "CARELOOP_ENGINE_SIP_LISTEN": f"{self.host}:{self.engine_port}",
            "CARELOOP_ENGINE_OUTBOUND_PROXY": f"{self.host}:{self.kamailio_port}",
        }


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")


def udp_port_free(host: str, port: int) -> bool:
    """Kamailio binds with SO_REUSEADDR and would share a port in use; ask first."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_kamailio(say: Say, layout: SipLayout, *, settle: float = 5.0) -> Child | None:
    """Write the configuration and start Kamailio; ``None`` (with a note) when it is not
    installed or does not start — the demo then runs without a registrar."""
    from careloop.contactcenter import kamailio
    from careloop.contactcenter.services import sip_domain

    binary = kamailio_binary()
    if binary is None:
        say(
            "注意 Note: 未安装 Kamailio，坐席软电话无法注册（可用固定 SIP 地址）。"
            "Kamailio is not installed: softphones cannot register (fixed SIP URIs still work)."
        )
        return None
    if not udp_port_free(layout.host, layout.kamailio_port):
        say(
            "注意 Note: Kamailio 未能启动，端口已被占用，坐席软电话无法注册。"
            f"Kamailio did not start: port {layout.kamailio_port} is in use; "
            "softphones cannot register."
        )
        return None
    config = kamailio.KamailioSettings(
        listen=(layout.host, layout.kamailio_port),
        domain=sip_domain(),
        engines=((layout.host, layout.engine_port),),
    )
    cfg = kamailio.write_config(config)
    run_dir = config.path / "run"
    run_dir.mkdir(exist_ok=True)
    config.ctl_socket.unlink(missing_ok=True)
    child = start_child(
        "kamailio",
        [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(run_dir), "-m", "32", "-M", "8"],
    )
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and child.alive() and not config.ctl_socket.exists():
        time.sleep(0.1)
    if not child.alive() or not config.ctl_socket.exists():
        child.stop()
        say(
            "注意 Note: Kamailio 未能启动，坐席软电话无法注册（见上方日志）。"
            f"Kamailio did not start (port {layout.kamailio_port}, see the log above); "
            "softphones cannot register."
        )
        return None
    return child


def softphone_help(layout: SipLayout, domain: str) -> str:
    """One line for the banner: how to point Linphone or MicroSIP at the demo."""
    return (
        f"坐席软电话 Softphones (Linphone / MicroSIP): 服务器 server {layout.host}:"
        f"{layout.kamailio_port}, 域 domain {domain}; 账号和密码见“我的电话”页面 "
        "— user name and password on the “My phone” page."
    )
