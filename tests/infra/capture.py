"""Captures the telemetry envelopes the real `handler` binary sends.

The handler runs as the Functions host would start it (FUNCTIONS_CUSTOMHANDLER_PORT on loopback), with
an Application Insights connection string whose ingestion endpoint is a local HTTPS stand-in. The
stand-in's certificate is signed by a throwaway CA made here, handed to the handler as SSL_CERT_FILE.
Heartbeats and an outage report are posted over loopback; SIGTERM makes the handler flush; the
envelopes it POSTed to /v2/track (gzip'd JSON arrays) are what the query tests build their tables from.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
IKEY = "00000000-0000-0000-0000-000000000000"


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 (IP SAN) signed by it: (ca, cert, key)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isp-monitor test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


class IngestionStandIn:
    """Answers POST /v2/track like Application Insights' ingestion endpoint and keeps the envelopes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.posts = 0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding", "").lower() == "gzip" or body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                text = body.decode("utf-8").strip()
                items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
                with stand_in._lock:
                    stand_in.envelopes.extend(items)
                    stand_in.posts += 1
                answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
                self.send_response(200 if self.path.startswith("/v2/track") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "IngestionStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@dataclass
class Capture:
    envelopes: list[dict[str, Any]]
    responses: list[tuple[str, int, str]] = field(default_factory=list)
    handler_stderr: str = ""


def post(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}", data=body, method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def wait_ready(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Like the Functions host: poll GET / until any HTTP answer (404 counts)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"handler exited with {process.returncode} before it was ready")
        try:
            urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.025)
    raise RuntimeError("handler did not answer GET / within its start-up time")


# What the capture sends: two devices' heartbeats as Azure's front end forwards them (the peer it saw
# appended to X-Forwarded-For; TEST-NET addresses, never contacted), dev-a again from a new public
# address carrying an outage report, dev-b with another, dev-q's heartbeats with connection quality, and
# refused heartbeats (one naming dev-b, one dev-q's bad quality object).
OUTAGE = {
    "id": "0b7e3c1e-5d7a-4c1b-9a59-3f5b7a0c2d11",
    "start": "2026-11-25T10:00:00Z",
    "end": "2026-11-25T10:07:30Z",
    "cause": "isp",
}
OUTAGE_B = {
    "id": "5f0c9a52-1e4b-4d7e-8c3a-7b2e6f9d0a44",
    "start": "2026-11-25T11:00:00Z",
    "end": "2026-11-25T11:02:00Z",
    "cause": "dns",
}
DEV_A_IP, DEV_A_NEW_IP, DEV_B_IP = "203.0.113.7", "203.0.113.99", "198.51.100.20"
DEV_Q_IP = "198.51.100.77"
QUALITY_GOOD = {"probes": 9, "lost": 0, "rtt_p50_ms": 12.5, "rtt_p95_ms": 20.25, "dns_ms": 3.5}
QUALITY_DEGRADED = {"probes": 9, "lost": 3, "rtt_p50_ms": 180, "rtt_p95_ms": 450.5, "dns_ms": 25}
QUALITY_LOST = {"probes": 9, "lost": 9, "rtt_p50_ms": None, "rtt_p95_ms": None, "dns_ms": None}
REQUESTS_SENT: list[tuple[str, dict[str, Any] | bytes, dict[str, str]]] = [
    ("dev-a", {"device": "dev-a", "note": "x", "agent_version": "0.1.0", "seq": 1, "rtt_ms": 12},
     {"X-Forwarded-For": f"{DEV_A_IP}:50001"}),
    ("dev-b", {"device": "dev-b", "note": "y", "agent_version": "0.1.0", "seq": 1, "rtt_ms": 15},
     {"X-Forwarded-For": f"{DEV_B_IP}:50002"}),
    ("dev-a+outage",
     {"device": "dev-a", "note": "x", "agent_version": "0.1.0", "seq": 2, "rtt_ms": 13, "outages": [OUTAGE]},
     {"X-Forwarded-For": f"{DEV_A_NEW_IP}:50003"}),
    ("dev-b+outage",
     {"device": "dev-b", "note": "y", "agent_version": "0.1.0", "seq": 2, "rtt_ms": 16, "outages": [OUTAGE_B]},
     {"X-Forwarded-For": f"{DEV_B_IP}:50006"}),
    # dev-q measures connection quality (interface A): a good interval, a degraded one, one where
    # every connect attempt was lost (null times), and a quality object the handler refuses.
    ("dev-q-good",
     {"device": "dev-q", "note": "good", "agent_version": "0.2.0", "seq": 1, "rtt_ms": 14, "quality": QUALITY_GOOD},
     {"X-Forwarded-For": f"{DEV_Q_IP}:50011"}),
    ("dev-q-degraded",
     {"device": "dev-q", "note": "degraded", "agent_version": "0.2.0", "seq": 2, "rtt_ms": 250,
      "quality": QUALITY_DEGRADED},
     {"X-Forwarded-For": f"{DEV_Q_IP}:50012"}),
    ("dev-q-lost",
     {"device": "dev-q", "note": "lost", "agent_version": "0.2.0", "seq": 3, "rtt_ms": 900, "quality": QUALITY_LOST},
     {"X-Forwarded-For": f"{DEV_Q_IP}:50013"}),
    ("refused-quality", {"device": "dev-q", "seq": 4, "quality": {"probes": 3, "lost": 4}},
     {"X-Forwarded-For": f"{DEV_Q_IP}:50014", "X-Device": "dev-q"}),
    ("refused-json", b"{not json", {"X-Forwarded-For": f"{DEV_A_IP}:50004"}),
    ("refused-dev-b", {"device": "dev-b", "note": "n" * 600, "seq": 2}, {"X-Forwarded-For": f"{DEV_B_IP}:50005"}),
]


def capture(handler: Path, workdir: Path, timeout: float = 60.0) -> Capture:
    ca, cert, key = make_tls_files(workdir)
    with IngestionStandIn(cert, key) as ingestion:
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
            "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey={IKEY};IngestionEndpoint=https://{LOOPBACK}:{ingestion.port}/",
            "SSL_CERT_FILE": str(ca),
            "WEBSITE_SITE_NAME": "ispmon-test",
            "RUST_LOG": "info",
        }
        stderr_path = workdir / "handler.stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen([str(handler)], env=env, stdout=stderr, stderr=stderr, cwd=workdir)
            responses = []
            try:
                wait_ready(port, process, time.monotonic() + 30)
                for label, body, headers in REQUESTS_SENT:
                    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                    status, text = post(port, "/api/ping", raw, headers)
                    responses.append((label, status, text))
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=timeout)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        # The handler has exited after its flush; nothing more can arrive.
        return Capture(envelopes=list(ingestion.envelopes), responses=responses, handler_stderr=stderr_path.read_text("utf-8", "replace"))
