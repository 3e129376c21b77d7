#!/usr/bin/env python
"""Load benchmark of the telephony engine: N concurrent ~20 s IVR calls driven by SIPp.

    .venv/bin/python bench/engine_load.py [--calls 250] [--rate 25] [--find-limit]

Each call: the engine answers with a flow that plays a TTS prompt (~4 s), collects four digits
sent as RFC 4733 events, records the caller for 12 s (the caller talks a tone the whole time)
and hangs up — about 20 s in all. SIPp places the calls at ``--rate`` per second, so all N are
up at once for several seconds. The engine runs as its own process (``python -m
careloop.engine``, uvloop), exactly as in production.

Prints calls attempted / succeeded / failed, engine CPU % (average and peak, 100 % = one core),
peak RSS, media clock health (skipped ticks, worst tick), recordings complete (Ogg/Opus file
present with the expected duration) and the ratio to the reference (250 concurrent calls, the
target of issue 3). ``--find-limit`` repeats with growing N and reports where it stops meeting
"0 failed, every recording complete, no skipped media ticks".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

from rtp_pcap import Key, Silence, Tone, write_rtp_pcap  # noqa: E402

REFERENCE_CALLS = 250
RECORD_SECONDS = 12
TOKEN = "bench-token"
FLOW = {
    "format": "careloop-flow/1",
    "id": "bench",
    "version": 1,
    "start": "welcome",
    "nodes": {
        "welcome": {
            "type": "say",
            "say": "您好，这里是随访中心，请输入四位验证码。",
            "next": "code",
        },
        "code": {
            "type": "gather",
            "say": {"silence": 100},
            "var": "code",
            "max_digits": 4,
            "first_digit_timeout": 10,
            "next": "record",
        },
        "record": {
            "type": "record",
            "var": "message",
            "beep": False,
            "max_duration": RECORD_SECONDS,
            "silence_timeout": 30,
            "next": "bye",
        },
        "bye": {"type": "hangup"},
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU used by the engine's child processes (the recording encoder), while they live."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def api(port: int, path: str) -> Any:
    import httpx

    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ).json()


def run(calls: int, rate: float, workdir: Path, *, verbose: bool) -> dict[str, Any]:
    import soundfile as sf

    data_dir = workdir / f"data-{calls}"
    flow_path = workdir / "bench-flow.json"
    flow_path.write_text(json.dumps(FLOW, ensure_ascii=False))
    pcap = workdir / "caller.pcap"
    write_rtp_pcap(
        pcap, [Silence(2500), Key("1"), Key("2"), Key("3"), Key("4"), Tone(440, 21000, level=0.3)]
    )
    scenario_text = (ROOT / "tests" / "engine" / "sipp" / "uac_pcap.xml").read_text()
    scenario = workdir / "uac.xml"
    scenario.write_text(
        scenario_text.replace("@PCAP@", str(pcap)).replace("@BYE_TIMEOUT@", "60000")
    )
    sip_port, api_port = free_port(), free_port()
    env = {**os.environ, "CARELOOP_ENGINE_API_TOKEN": TOKEN}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(workdir / f"engine-{calls}.log", "wb")
    engine = subprocess.Popen(
        [
            sys.executable, "-m", "careloop.engine", "--sip-listen", f"127.0.0.1:{sip_port}",
            "--flow", str(flow_path), "--data-dir", str(data_dir), "--api-listen", f"127.0.0.1:{api_port}",
            "--rtp-ports", "20000-29998", "--max-calls", str(calls * 2), "--log-level", "WARNING",
            "--tts-cache", str(workdir / "tts"),
        ],
        cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=log,
    )  # fmt: skip
    assert engine.stdout is not None
    ready = json.loads(engine.stdout.readline())
    assert ready["event"] == "ready", ready
    sipp_dir = workdir / f"sipp-{calls}"
    sipp_dir.mkdir(exist_ok=True)
    started = time.monotonic()
    cpu_start = cpu_seconds(engine.pid)
    sipp = subprocess.Popen(
        [
            shutil.which("sipp") or "sipp", "-sf", str(scenario), "-s", "bench", "-i", "127.0.0.1", "-p", str(free_port()),
            "-mi", "127.0.0.1", "-mp", str(free_port()), "-m", str(calls), "-l", str(calls), "-r", str(rate),
            "-timeout", "120s", "-timeout_error", "-nostdin", "-trace_err", "-trace_stat", "-fd", "1",
            f"127.0.0.1:{sip_port}",
        ],
        cwd=str(sipp_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    samples: list[float] = []
    sipp_cpu_start = cpu_seconds(sipp.pid)
    peak_calls = 0
    last_cpu, last_t = cpu_start, started
    sipp_cpu = 0.0
    while sipp.poll() is None:
        time.sleep(1.0)
        try:
            sipp_cpu = cpu_seconds(sipp.pid) - sipp_cpu_start
        except (FileNotFoundError, ProcessLookupError):
            pass
        now, cpu = time.monotonic(), cpu_seconds(engine.pid)
        samples.append(100 * (cpu - last_cpu) / (now - last_t))
        last_cpu, last_t = cpu, now
        try:
            health = api(api_port, "/v1/health")
            peak_calls = max(peak_calls, health["calls"])
        except Exception:
            health = {"calls": -1, "media": {}}
        if verbose:
            media = health["media"]
            print(
                f"  t={now - started:5.1f}s cpu={samples[-1]:5.1f}% calls={health['calls']} "
                f"skipped={media.get('skipped_ticks')} late={media.get('late_ticks')} "
                f"max_tick={media.get('max_tick_ms', 0):.1f}ms max_late={media.get('max_late_ms', 0):.1f}ms gc_max={media.get('gc_max_ms', 0):.1f}ms",
                flush=True,
            )
    calls_elapsed = time.monotonic() - started
    cpu_calls = cpu_seconds(engine.pid) - cpu_start
    # Recordings are encoded to Ogg/Opus after each call by a low-priority thread; wait for them
    drain_started = time.monotonic()
    while True:
        health = api(api_port, "/v1/health")
        if health["recordings_encoding"] == 0 and health["recordings_active"] == 0:
            break
        time.sleep(0.5)
    drain_seconds = time.monotonic() - drain_started
    cdrs = api(api_port, "/v1/cdrs?limit=100000")["cdrs"]
    rss = peak_rss_mb(engine.pid)
    encoder_cpu = children_cpu_seconds(engine.pid)
    engine.send_signal(signal.SIGTERM)
    engine.wait(30)
    stat_files = sorted(sipp_dir.glob("*_.csv"))
    succeeded = failed = 0
    if stat_files:
        header, *rows = stat_files[-1].read_text().strip().splitlines()
        columns = header.split(";")
        last = dict(zip(columns, rows[-1].split(";"), strict=False))
        succeeded = int(last.get("SuccessfulCall(C)", 0))
        failed = int(last.get("FailedCall(C)", 0))
    complete = 0
    for cdr in cdrs:
        for rec in cdr.get("recordings", []):
            path = Path(rec["path"])
            if path.exists() and abs(sf.info(str(path)).frames / 8000 - RECORD_SECONDS) < 0.1:
                complete += 1
    flows_ok = sum(
        1 for c in cdrs if c["flow"].get("outcome") == "hangup" and c["cause"] == "normal"
    )
    return {
        "calls": calls,
        "rate": rate,
        "attempted": succeeded + failed,
        "succeeded": succeeded,
        "failed": failed,
        "cdrs": len(cdrs),
        "flows_completed": flows_ok,
        "peak_concurrent": peak_calls,
        "cpu_avg": cpu_calls / calls_elapsed * 100,
        "cpu_peak": max(samples) if samples else 0.0,
        "rss_peak_mb": rss,
        "recordings_complete": complete,
        "encode_drain_s": drain_seconds,
        "skipped_ticks": health["media"]["skipped_ticks"],
        "max_tick_ms": health["media"]["max_tick_ms"],
        "elapsed_s": calls_elapsed,
        "sipp_cpu_avg": sipp_cpu / calls_elapsed * 100,
        "encoder_cpu_s": encoder_cpu,
        "late_ticks": health["media"]["late_ticks"],
        "max_late_ms": health["media"]["max_late_ms"],
        "gc_max_ms": health["media"]["gc_max_ms"],
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"calls attempted {result['attempted']}, succeeded {result['succeeded']}, failed {result['failed']} "
        f"(peak {result['peak_concurrent']} concurrent, CDRs {result['cdrs']}, flows completed {result['flows_completed']})"
    )
    print(
        f"engine CPU avg {result['cpu_avg']:.0f}% peak {result['cpu_peak']:.0f}% (100% = one core), "
        f"peak RSS {result['rss_peak_mb']:.0f} MB; recording encoder process {result['encoder_cpu_s']:.1f} CPU s; "
        f"SIPp (load generator, same machine) CPU avg {result['sipp_cpu_avg']:.0f}%"
    )
    print(
        f"media clock: {result['skipped_ticks']:.0f} skipped ticks, {result['late_ticks']:.0f} ticks >10 ms late "
        f"(worst {result['max_late_ms']:.0f} ms), worst tick {result['max_tick_ms']:.1f} ms, worst GC pause {result['gc_max_ms']:.0f} ms; "
        f"recordings complete {result['recordings_complete']}/{result['calls']} "
        f"(encoding finished {result['encode_drain_s']:.1f} s after the last call)"
    )
    ratio = result["peak_concurrent"] / REFERENCE_CALLS
    print(f"ratio to reference ({REFERENCE_CALLS} concurrent calls): {ratio:.2f}")


def healthy(result: dict[str, Any]) -> bool:
    return (
        result["failed"] == 0
        and result["succeeded"] == result["calls"]
        and result["recordings_complete"] == result["calls"]
        and result["skipped_ticks"] == 0
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=REFERENCE_CALLS)
    parser.add_argument("--rate", type=float, default=25.0, help="new calls per second")
    parser.add_argument(
        "--find-limit", action="store_true", help="grow N until the run is no longer clean"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    for tool in ("sipp", "espeak-ng"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/system-deps.sh)", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    try:
        sizes = [args.calls] if not args.find_limit else [100, 200, 250, 300, 350, 400, 500]
        for calls in sizes:
            print(f"== {calls} calls at {args.rate}/s", flush=True)
            result = run(calls, args.rate, workdir, verbose=args.verbose)
            report(result)
            if args.find_limit and not healthy(result):
                print(f"limit: the run stops being clean at {calls} concurrent calls")
                break
        return 0 if healthy(result) else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
