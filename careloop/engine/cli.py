"""``careloop engine``: run the telephony engine, or check flow documents.

    careloop engine --sip-listen 0.0.0.0:5060 --advertise 10.0.0.5 --flow booking.json \\
                    --data-dir /var/lib/careloop/engine --api-listen 127.0.0.1:8089
    careloop engine validate-flow docs/flows/booking.json

Every option can also come from ``CARELOOP_ENGINE_<OPTION>`` (e.g. ``CARELOOP_ENGINE_API_TOKEN``);
secrets (API token, SIP password) are better passed that way than on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from careloop.engine.config import (
    ConfigError,
    EngineConfig,
    RegistrarConfig,
    env_default,
    parse_hostport,
)
from careloop.engine.flow import FlowError, load_flow_file


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="careloop engine", description="CareLoop telephony engine (SIP/RTP, IVR, dialler)."
    )
    d = env_default
    sip = p.add_argument_group("SIP")
    sip.add_argument(
        "--sip-listen",
        default=d("sip_listen") or "127.0.0.1:5060",
        help="HOST:PORT for SIP over UDP (and TCP with --sip-tcp)",
    )
    sip.add_argument(
        "--sip-tcp", action="store_true", default=bool(d("sip_tcp")), help="also listen on TCP"
    )
    sip.add_argument(
        "--advertise",
        default=d("advertise"),
        help="IP to put in SDP/Contact (needed behind NAT or on a wildcard bind with several routes)",
    )
    sip.add_argument(
        "--rtp-host", default=d("rtp_host"), help="address RTP binds to (default: the SIP address)"
    )
    sip.add_argument(
        "--rtp-ports", default=d("rtp_ports") or "20000-39998", help="LOW-HIGH RTP port range"
    )
    sip.add_argument(
        "--rtp-latching",
        action="store_true",
        default=bool(d("rtp_latching")),
        help="send RTP where the peer's RTP comes from (NAT)",
    )
    sip.add_argument(
        "--codecs", default=d("codecs") or "PCMA,PCMU", help="codec preference, PCMA and/or PCMU"
    )
    sip.add_argument(
        "--registrar",
        default=d("registrar"),
        help="HOST:PORT of the registrar (omit for direct SIP)",
    )
    sip.add_argument(
        "--aor", default=d("aor"), help="address-of-record to register, e.g. sip:ivr@careloop.local"
    )
    sip.add_argument(
        "--username", default=d("username"), help="digest user (default: the AOR user)"
    )
    sip.add_argument(
        "--password",
        default=d("password"),
        help="digest password (prefer CARELOOP_ENGINE_PASSWORD)",
    )
    sip.add_argument("--register-expires", type=int, default=int(d("register_expires") or 300))
    sip.add_argument(
        "--outbound-proxy",
        default=d("outbound_proxy"),
        help="HOST:PORT every outbound INVITE goes to (trunk/PBX)",
    )
    sip.add_argument(
        "--from-uri", default=d("from_uri"), help="default caller identity for outbound calls"
    )
    sip.add_argument("--max-calls", type=int, default=int(d("max_calls") or 1000))
    app = p.add_argument_group("application")
    app.add_argument("--flow", default=d("flow"), help="flow document answering every inbound call")
    app.add_argument(
        "--data-dir",
        default=d("data_dir"),
        help="CDRs, recordings, prompts, TTS cache (default $CARELOOP_DATA_DIR/engine)",
    )
    app.add_argument(
        "--api-listen",
        default=d("api_listen"),
        help="HOST:PORT of the command API (HTTP + websocket)",
    )
    app.add_argument(
        "--api-token",
        default=d("api_token"),
        help="bearer token for the API (prefer CARELOOP_ENGINE_API_TOKEN)",
    )
    app.add_argument("--webhook-url", default=d("webhook_url"), help="POST every event here too")
    app.add_argument(
        "--webhook-secret",
        default=d("webhook_secret"),
        help="HMAC-SHA256 key for the webhook signature",
    )
    app.add_argument(
        "--app-url", default=d("app_url"), help="base URL for relative http nodes in flows"
    )
    app.add_argument("--app-token", default=d("app_token"), help="bearer token sent to --app-url")
    app.add_argument("--tts-voice", default=d("tts_voice") or "cmn")
    app.add_argument(
        "--tts-cache", default=d("tts_cache"), help="TTS cache directory (default <data-dir>/tts)"
    )
    app.add_argument(
        "--tts-speed", type=int, default=int(d("tts_speed") or 170), help="words per minute"
    )
    app.add_argument("--moh", default=d("moh"), help="music-on-hold audio file")
    app.add_argument("--record-calls", action="store_true", default=bool(d("record_calls")))
    p.add_argument("--log-level", default=d("log_level") or "INFO")
    return p


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    """Build the engine configuration from parsed options (raises ConfigError)."""
    low_high = args.rtp_ports.split("-")
    if len(low_high) != 2 or not all(x.isdigit() for x in low_high):
        raise ConfigError("--rtp-ports is LOW-HIGH")
    registrar = None
    if args.registrar:
        if not args.aor or not args.password:
            raise ConfigError("--registrar needs --aor and a password")
        from aiosipua import parse_address

        user = parse_address(f"<{args.aor}>").uri.user or ""
        registrar = RegistrarConfig(
            aor=args.aor,
            address=parse_hostport(args.registrar, default_port=5060),
            username=args.username or user,
            password=args.password,
            expires=args.register_expires,
        )
    data_dir = args.data_dir or os.path.join(os.environ.get("CARELOOP_DATA_DIR", "var"), "engine")
    return EngineConfig(
        sip_listen=parse_hostport(args.sip_listen, default_port=5060),
        sip_tcp=args.sip_tcp,
        advertise=args.advertise,
        rtp_host=args.rtp_host,
        rtp_ports=(int(low_high[0]), int(low_high[1])),
        rtp_latching=args.rtp_latching,
        codecs=tuple(c.strip().upper() for c in args.codecs.split(",") if c.strip()),
        registrar=registrar,
        outbound_proxy=parse_hostport(args.outbound_proxy, default_port=5060)
        if args.outbound_proxy
        else None,
        from_uri=args.from_uri,
        data_dir=Path(data_dir),
        flow_path=Path(args.flow) if args.flow else None,
        api_listen=parse_hostport(args.api_listen, default_port=8089) if args.api_listen else None,
        api_token=args.api_token,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        app_url=args.app_url,
        app_token=args.app_token,
        tts_voice=args.tts_voice,
        tts_speed=args.tts_speed,
        tts_cache_dir=Path(args.tts_cache) if args.tts_cache else None,
        max_calls=args.max_calls,
        moh_path=Path(args.moh) if args.moh else None,
        record_calls=args.record_calls,
        log_level=args.log_level,
    )


def ensure_api_token(data_dir: Path) -> str:
    """The token in ``<data-dir>/api-token``, created (mode 600) on first use.

    Lets ``careloop engine --api-listen ...`` run without a token option while the API still
    requires one; the application reads the file (or is given the same value by environment).
    """
    path = data_dir / "api-token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    logging.getLogger(__name__).warning("no API token given: generated one in %s", path)
    return token


def _validate_flows(paths: list[str]) -> int:
    status = 0
    for path in paths:
        try:
            flow = load_flow_file(Path(path))
        except FlowError as exc:
            status = 1
            print(
                json.dumps({"file": path, "valid": False, "errors": exc.errors}, ensure_ascii=False)
            )
            continue
        print(
            json.dumps(
                {
                    "file": path,
                    "valid": True,
                    "id": flow.id,
                    "version": flow.version,
                    "nodes": len(flow.nodes),
                },
                ensure_ascii=False,
            )
        )
    return status


async def _run(config: EngineConfig) -> int:
    from careloop.engine.engine import Engine

    engine = Engine(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    # Everything allocated so far lives for the whole process: keep it out of the cyclic GC so
    # full collections stay short (measured: 100 ms pauses at 250 calls without this)
    gc.collect()
    gc.freeze()
    gc.set_threshold(10000, 50, 100)
    print(
        json.dumps(
            {
                "event": "ready",
                "sip_port": engine.sip.bound_port(),
                "api": engine.api_server.url if engine.api_server else None,
            }
        ),
        flush=True,
    )
    await stop.wait()
    await engine.stop()
    return 0


def main(argv: list[str]) -> int:
    """Entry point used by ``careloop engine``; returns the process exit status."""
    if argv and argv[0] == "validate-flow":
        if len(argv) < 2:
            print("usage: careloop engine validate-flow FILE...", file=sys.stderr)
            return 2
        return _validate_flows(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if logging.getLogger().level > logging.DEBUG:
        # The libraries log every INVITE with its phone numbers at INFO; keep those out of logs
        # (httpx logs every webhook POST at INFO: noise)
        for name in ("aiosipua", "aiortp", "httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
        if config.api_listen is not None and not config.api_token:
            config.api_token = ensure_api_token(config.data_dir)
        config.validate()
        if config.flow_path is not None:
            load_flow_file(config.flow_path)
    except (ConfigError, FlowError) as exc:
        print(f"careloop engine: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        return uvloop.run(_run(config))
    except ImportError:
        return asyncio.run(_run(config))
