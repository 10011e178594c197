#!/usr/bin/env python3
"""What connection quality costs the agent: CPU time and memory per heartbeat interval, with
quality on and off. Not part of the test run; prints numbers.

The real `heartbeat-agent` runs as a daemon against the real `handler` on loopback (telemetry off)
for a bounded time, once with `--quality on` and once with `--quality off`, with three loopback
probe targets like the three defaults: the handler's port twice (open) and a closed port (every
attempt lost, refused at once). Nothing leaves 127.0.0.1. CPU time (user + system, every thread,
from the kernel's rusage of the exited child) and peak RSS are per run; CPU per interval is the run's
CPU divided by the heartbeats it delivered.

Usage: benches/agent-quality.py [--seconds N] [--interval S] [--count C] [--agent PATH] [--handler PATH]
  defaults: 30 s per run, 1 s interval, 3 attempts per target; the binaries in target/debug (built
  with `cargo build --bins` when missing; pass release builds for the figures users get, lower).
  Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("agent-quality.py: the handler did not answer within 30 s")


def vm_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else 0


def run_agent(agent: Path, handler_port: int, quality: str, args: argparse.Namespace) -> dict:
    closed = free_port()
    targets = f"{LOOPBACK}:{handler_port},{LOOPBACK}:{handler_port},{LOOPBACK}:{closed}"
    with tempfile.TemporaryDirectory(prefix="agent-quality-") as state:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": state,
            "HEARTBEAT_STATE_DIR": state,
        }
        command = [
            str(agent), "--daemon", "--url", f"http://{LOOPBACK}:{handler_port}/api/ping",
            "--device", f"bench-{quality}", "--interval", str(args.interval),
            "--probe-targets", targets, "--quality", quality, "--quality-count", str(args.count),
        ]
        out = Path(state) / "stdout"
        with open(out, "wb") as stdout:
            process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
            try:
                time.sleep(args.seconds)
                rss_end = vm_kib(process.pid, "VmRSS")
                process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid:
                        break
                    time.sleep(0.02)
                else:
                    process.kill()
                    sys.exit("agent-quality.py: the agent did not stop within 10 s of SIGTERM")
            finally:
                if process.poll() is None and process.returncode is None:
                    try:
                        process.kill()
                    except ProcessLookupError:
                        pass
        lines = out.read_text().splitlines()
    delivered = sum(1 for line in lines if " ok status=" in line)
    if delivered == 0:
        sys.exit(f"agent-quality.py: no heartbeat was delivered with quality {quality}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"delivered": delivered, "cpu_s": cpu, "cpu_ms_per_interval": 1000 * cpu / delivered,
            "rss_end_kib": rss_end, "rss_peak_kib": usage.ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--agent", type=Path, default=ROOT / "target" / "debug" / "heartbeat-agent")
    parser.add_argument("--handler", type=Path, default=ROOT / "target" / "debug" / "handler")
    args = parser.parse_args()
    if not (1 <= args.seconds <= 600):
        sys.exit("agent-quality.py: --seconds must be from 1 to 600")
    if not (args.agent.is_file() and args.handler.is_file()):
        subprocess.run(["cargo", "build", "--locked", "--bins"], cwd=ROOT, check=True)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="agent-quality-handler-") as work:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work,
               "FUNCTIONS_CUSTOMHANDLER_PORT": str(port)}
        handler = subprocess.Popen([str(args.handler)], env=env, cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, time.monotonic() + 30)
            results = {q: run_agent(args.agent, port, q, args) for q in ("off", "on")}
        finally:
            handler.send_signal(signal.SIGTERM)
            try:
                handler.wait(timeout=10)
            except subprocess.TimeoutExpired:
                handler.kill()
    attempts = 3 * args.count
    print(f"agent cost of connection quality: {args.seconds:g} s per run, interval {args.interval} s, "
          f"{attempts} connect attempts per interval (3 loopback targets x {args.count}, one closed)")
    print(f"agent: {args.agent}")
    print("| quality | heartbeats | CPU total | CPU per interval | RSS at end | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for q, r in results.items():
        print(f"| {q} | {r['delivered']} | {r['cpu_s'] * 1000:.1f} ms | {r['cpu_ms_per_interval']:.3f} ms "
              f"| {r['rss_end_kib']} KiB | {r['rss_peak_kib']} KiB |")
    extra = results["on"]["cpu_ms_per_interval"] - results["off"]["cpu_ms_per_interval"]
    print(f"quality adds {extra:.3f} ms CPU per interval "
          f"({extra / attempts:.3f} ms per connect attempt), "
          f"{results['on']['rss_peak_kib'] - results['off']['rss_peak_kib']} KiB peak RSS")


if __name__ == "__main__":
    main()
