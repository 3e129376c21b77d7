"""Engine configuration: one typed dataclass filled from command-line options and environment.

Every option has an environment variable (``CARELOOP_ENGINE_<NAME>``) so the engine can be
configured the same way as the web process; command-line options win.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


class ConfigError(ValueError):
    """An option value the engine cannot run with (message says which and why)."""


def parse_hostport(value: str, *, default_port: int) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``HOST``, ``[V6]:PORT`` or ``:PORT`` into ``(host, port)``."""
    value = value.strip()
    if not value:
        raise ConfigError("empty address")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError as exc:
        raise ConfigError(f"bad port in {value!r}") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"port out of range in {value!r}")
    return host or "0.0.0.0", port


def is_ip_literal(host: str) -> bool:
    """Whether *host* is a numeric IPv4/IPv6 address (not a name)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def route_source_ip(peer_ip: str) -> str:
    """The local address the kernel would use to reach *peer_ip* (no packet is sent).

    Used to pick the address to advertise in SDP and Contact when the engine listens on a
    wildcard address: advertising ``0.0.0.0`` or a guess would send media to the wrong place.
    """
    family = socket.AF_INET6 if ":" in peer_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer_ip, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


@dataclass(frozen=True)
class RegistrarConfig:
    """Registration of the engine's address-of-record at a registrar (e.g. Kamailio)."""

    aor: str
    address: tuple[str, int]
    username: str
    password: str
    expires: int = 300


@dataclass
class EngineConfig:
    """Everything the engine needs to run; see ``careloop engine --help``."""

    sip_listen: tuple[str, int] = ("127.0.0.1", 5060)
    sip_tcp: bool = False
    advertise: str | None = None
    rtp_host: str | None = None
    rtp_ports: tuple[int, int] = (20000, 39998)
    rtp_latching: bool = False
    codecs: tuple[str, ...] = ("PCMA", "PCMU")
    registrar: RegistrarConfig | None = None
    outbound_proxy: tuple[str, int] | None = None
    from_uri: str | None = None
    data_dir: Path = field(default_factory=lambda: Path("var/engine"))
    flow_path: Path | None = None
    api_listen: tuple[str, int] | None = None
    api_token: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    app_url: str | None = None
    app_token: str | None = None
    tts_voice: str = "cmn"
    tts_speed: int = 170
    tts_cache_dir: Path | None = None
    max_calls: int = 1000
    sip_timer_b: float = 32.0
    unanswered_timeout: float = 60.0
    inbound_ring_timeout: float = 30.0
    record_calls: bool = False
    timezone: str = "Asia/Shanghai"
    moh_path: Path | None = None
    log_level: str = "INFO"

    @property
    def sip_host(self) -> str:
        return self.sip_listen[0]

    @property
    def sip_port(self) -> int:
        return self.sip_listen[1]

    @property
    def rtp_bind_host(self) -> str:
        """Address RTP sockets bind to (defaults to the SIP listen address)."""
        return self.rtp_host or self.sip_host

    def advertised_ip(self, peer_ip: str | None = None) -> str:
        """The IP put in SDP ``c=``/``o=`` and in Via/Contact.

        An explicit ``--advertise`` wins; then a specific bind address; for a wildcard bind the
        kernel's route towards the peer decides, so the peer always gets an address that
        reaches this host.
        """
        if self.advertise:
            return self.advertise
        bind = self.rtp_bind_host
        if bind not in WILDCARD_HOSTS:
            return bind
        return route_source_ip(peer_ip or "192.0.2.1")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for combinations the engine cannot run with."""
        low, high = self.rtp_ports
        if low < 1024 or high > 65535 or high - low < 2:
            raise ConfigError("rtp port range must lie within 1024-65535 and hold a pair")
        for codec in self.codecs:
            if codec.upper() not in {"PCMA", "PCMU"}:
                raise ConfigError(f"unsupported codec {codec!r} (PCMA, PCMU)")
        if self.advertise and not is_ip_literal(self.advertise):
            raise ConfigError("--advertise must be a numeric IP address")
        if self.api_listen is not None and not self.api_token:
            raise ConfigError(
                "the command API needs a token (--api-token or CARELOOP_ENGINE_API_TOKEN)"
            )


def env_default(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Value of ``CARELOOP_ENGINE_<NAME>`` (``None`` when unset or empty)."""
    source = os.environ if env is None else env
    value = source.get(f"CARELOOP_ENGINE_{name.upper()}")
    return value or None
