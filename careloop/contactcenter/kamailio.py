"""Kamailio as the agents' registrar and the engines' front proxy, configured by CareLoop.

``write_config`` writes ``<CARELOOP_DATA_DIR>/kamailio/``: ``kamailio.cfg`` (registrar + usrloc,
digest auth against HA1 hashes, dispatcher to the engine processes, a binrpc control socket for
``kamcmd``), ``users.cfg`` (the agents' HA1 hashes, mode 600, included by kamailio.cfg) and
``dispatcher.list``. ``registrations`` reads who is registered (``kamcmd ul.dump``) for presence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from careloop.contactcenter.choices import PhoneKind
from careloop.contactcenter.models import AgentPhone

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class KamailioSettings:
    listen: tuple[str, int] = ("127.0.0.1", 5060)
    domain: str = "careloop.local"
    engines: tuple[tuple[str, int], ...] = (("127.0.0.1", 5070),)
    directory: Path | None = None

    @property
    def path(self) -> Path:
        return self.directory or Path(settings.DATA_DIR) / "kamailio"

    @property
    def ctl_socket(self) -> Path:
        return self.path / "kamailio_ctl"


def ha1(username: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


CFG = r"""#!KAMAILIO
#
# Written by CareLoop (careloop manage kamailio_config); edits are overwritten.
# Agents' phones REGISTER here (digest auth, realm @DOMAIN@); calls from the engines
# (dispatcher set 1) to @DOMAIN@ users go to the registered phone, to anything else
# they are relayed to the request URI (the trunk). Calls from outside to a number that is not
# a registered agent are spread over the engines (dispatcher, round robin).

debug=2
log_stderror=yes
children=4
auto_aliases=no
listen=udp:@HOST@:@PORT@
alias="@DOMAIN@"
alias="@HOST@:@PORT@"

mpath="@MODULES@"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"
loadmodule "dispatcher.so"
loadmodule "ctl.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "default_expires", 300)
modparam("htable", "htable", "users=>size=8;")
modparam("auth", "nonce_expire", 300)
modparam("dispatcher", "list_file", "@DIR@/dispatcher.list")
modparam("dispatcher", "flags", 2)
modparam("ctl", "binrpc", "unix:@DIR@/kamailio_ctl")

import_file "@DIR@/users.cfg"

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (!sanity_check("1511", "7")) {
        xlog("L_WARN", "malformed request from $si:$sp\n");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK") && t_check_trans()) {
            t_relay();
            exit;
        }
        if (uri != myself) {
            # In-dialog request (the ACK of a 2xx, a BYE) without our Route: pass it on
            t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    t_check_trans();

    if (is_method("REGISTER")) {
        if (!pv_www_authenticate("@DOMAIN@", "$sht(users=>$fU)", "1")) {
            www_challenge("@DOMAIN@", "0");
            exit;
        }
        consume_credentials();
        if (!save("location")) {
            sl_reply_error();
        }
        exit;
    }
    if (is_method("INVITE|REFER")) {
        record_route();
    }

    if (ds_is_from_list("1")) {
        # An engine places a call: to an agent of ours, or out to the trunk
        if (uri == myself) {
            if (!lookup("location")) {
                sl_send_reply("480", "Agent Not Registered");
                exit;
            }
        }
        t_relay();
        exit;
    }

    if ($sht(users=>$rU) != $null) {
        # A registered agent calling another agent
        if (!pv_proxy_authenticate("@DOMAIN@", "$sht(users=>$fU)", "1")) {
            proxy_challenge("@DOMAIN@", "0");
            exit;
        }
        consume_credentials();
        if (!lookup("location")) {
            sl_send_reply("480", "Agent Not Registered");
            exit;
        }
        t_relay();
        exit;
    }

    # Everything else (the follow-up number called from outside) goes to an engine
    if (!ds_select_dst("1", "4")) {
        sl_send_reply("503", "No Engine");
        exit;
    }
    t_relay();
}
"""


def _hostport(value: tuple[str, int]) -> str:
    return f"{value[0]}:{value[1]}"


def render_users(config: KamailioSettings) -> str:
    lines = ["# Agents' HA1 digests, written by CareLoop", "event_route[htable:mod-init] {"]
    phones = AgentPhone.objects.filter(kind=PhoneKind.REGISTERED).exclude(sip_password="")
    for phone in phones.order_by("sip_username"):
        if not _SAFE.match(phone.sip_username):
            continue
        digest = ha1(phone.sip_username, config.domain, phone.sip_password)
        lines.append(f'    $sht(users=>{phone.sip_username}) = "{digest}";')
    if len(lines) == 2:
        lines.append("    $var(no_agents) = 1;  # an empty route does not parse")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_config(config: KamailioSettings | None = None) -> Path:
    """Write kamailio.cfg, users.cfg and dispatcher.list; returns kamailio.cfg's path."""
    config = config or KamailioSettings()
    folder = config.path
    folder.mkdir(parents=True, exist_ok=True)
    cfg = (
        CFG.replace("@HOST@", config.listen[0])
        .replace("@PORT@", str(config.listen[1]))
        .replace("@DOMAIN@", config.domain)
        .replace("@MODULES@", MODULES)
        .replace("@DIR@", str(folder))
    )
    users = folder / "users.cfg"
    fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_users(config))
    os.chmod(users, 0o600)
    (folder / "dispatcher.list").write_text(
        "".join(f"1 sip:{_hostport(engine)}\n" for engine in config.engines)
    )
    path = folder / "kamailio.cfg"
    path.write_text(cfg)
    return path


def registrations(config: KamailioSettings | None = None) -> dict[str, tuple[str, dt.datetime]]:
    """Registered agents from ``kamcmd ul.dump``: user name → (contact, expiry)."""
    config = config or KamailioSettings()
    result = subprocess.run(
        ["kamcmd", "-s", f"unix:{config.ctl_socket}", "ul.dump"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return parse_ul_dump(result.stdout)


def parse_ul_dump(text: str) -> dict[str, tuple[str, dt.datetime]]:
    now = timezone.now()
    found: dict[str, tuple[str, dt.datetime]] = {}
    aor = contact = ""
    for raw in text.splitlines():
        line = raw.strip()
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "AoR":
            aor, contact = value.split("@", 1)[0], ""
        elif key == "Address" and aor:
            contact = value
        elif key == "Expires" and aor and contact:
            seconds = int(value) if value.lstrip("-").isdigit() else 0
            if seconds > 0 or value == "permanent":
                expiry = now + dt.timedelta(seconds=seconds if seconds > 0 else 3600 * 24 * 365)
                if aor not in found or found[aor][1] < expiry:
                    found[aor] = (contact, expiry)
    return found


def _kamcmd(config: KamailioSettings, *args: str) -> str:
    result = subprocess.run(
        ["kamcmd", "-s", f"unix:{config.ctl_socket}", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout


def _loaded_users(config: KamailioSettings) -> set[str]:
    """User names in the running Kamailio's ``users`` table (``htable.dump``)."""
    names: set[str] = set()
    for raw in _kamcmd(config, "htable.dump", "users").splitlines():
        key, _, value = raw.strip().partition(":")
        if key.strip() == "name":
            names.add(value.strip())
    return names


def sync_users(config: KamailioSettings | None = None) -> int:
    """Bring the running Kamailio's accounts up to date without a restart: every registered
    AgentPhone's HA1 is set in the ``users`` table over the control socket (``htable.sets``),
    accounts that no longer exist are deleted, and users.cfg is rewritten for the next start.
    Returns the number of accounts loaded."""
    config = config or KamailioSettings()
    wanted: dict[str, str] = {}
    phones = AgentPhone.objects.filter(kind=PhoneKind.REGISTERED).exclude(sip_password="")
    for phone in phones:
        if _SAFE.match(phone.sip_username):
            wanted[phone.sip_username] = ha1(phone.sip_username, config.domain, phone.sip_password)
    for name in sorted(_loaded_users(config) - set(wanted)):
        _kamcmd(config, "htable.delete", "users", name)
    for name, digest in sorted(wanted.items()):
        _kamcmd(config, "htable.sets", "users", name, digest)
    users = config.path / "users.cfg"
    fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_users(config))
    return len(wanted)


def refresh_presence(config: KamailioSettings | None = None) -> int:
    """Load new or changed agent accounts into Kamailio, then update every registered-kind
    AgentPhone from Kamailio's location table."""
    from careloop.contactcenter.services import update_presence

    sync_users(config)
    return update_presence(registrations(config))
