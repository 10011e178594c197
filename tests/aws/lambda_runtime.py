"""A loopback stand-in for the Lambda Runtime API, enough to run the real ``lambda`` binary:
``GET /2018-06-01/runtime/invocation/next`` hands out one event (with the documented
``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn`` and ``-Trace-Id``
headers), ``POST …/invocation/{id}/response`` and ``…/{id}/error`` take the answer, and
``POST /2018-06-01/runtime/init/error`` records an initialization error. Events are Function URL
events (payload format 2.0). The binary's stdout lines are collected as it writes them.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:ispmon-heartbeat"


def url_event(body: str, *, key: str | None, path: str = "/api/ping", method: str = "POST", source_ip: str = "203.0.113.7") -> dict:
    """A Function URL invocation as Lambda delivers it (payload format version 2.0)."""
    now = time.time()
    headers = {"content-type": "application/json", "user-agent": "heartbeat-agent", "host": "abc.lambda-url.eu-west-1.on.aws"}
    if key is not None:
        headers["x-functions-key"] = key
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "heartbeat-agent"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


class RuntimeApi:
    """The stand-in server and the binary it runs; use as a context manager."""

    def __init__(self, binary: Path, env: dict[str, str]) -> None:
        self.binary = binary
        self.extra_env = env
        self.events: queue.Queue = queue.Queue()
        self.results: dict[str, queue.Queue] = {}
        self.init_errors: list[str] = []
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "RuntimeApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"{PREFIX}/invocation/next":
                    self.reply(404)
                    return
                request_id, event = api.events.get()
                self.reply(
                    200,
                    json.dumps(event).encode(),
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 10) * 1000)),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 6 * 1024 * 1024))
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(body.decode("utf-8", "replace"))
                    self.reply(202)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    box = api.results.get(parts[1])
                    if box is None:
                        self.reply(400)
                        return
                    box.put((parts[2], body))
                    self.reply(202)
                else:
                    self.reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": "ispmon-heartbeat",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ispmon-heartbeat",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0123456789abcdef",
            "AWS_REGION": "eu-west-1",
            **self.extra_env,
        }
        self.process = subprocess.Popen([str(self.binary)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True).start()
        return self

    def _read(self, stream, into: list[str]) -> None:
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    def invoke(self, event: dict, timeout: float = 10.0) -> dict:
        request_id = str(uuid.uuid4())
        box: queue.Queue = queue.Queue()
        self.results[request_id] = box
        self.events.put((request_id, event))
        try:
            kind, body = box.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer in {timeout} s; init errors {self.init_errors}; stderr {self.errors[-5:]}") from None
        if kind != "response":
            raise AssertionError(f"invocation error: {body!r}")
        return json.loads(body)

    def lines_now(self, settle: float = 0.3) -> list[str]:
        """The stdout lines so far, after waiting until none arrived for ``settle`` seconds."""
        count = -1
        deadline = time.time() + 10
        while time.time() < deadline:
            with self._lock:
                if len(self.lines) == count:
                    return list(self.lines)
                count = len(self.lines)
            time.sleep(settle)
        raise AssertionError("the binary's stdout did not settle")

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.server.shutdown()
        self.server.server_close()
