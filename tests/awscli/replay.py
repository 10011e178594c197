"""Replays aws command lines through the real AWS CLI v1 (PyPI `awscli`), offline, in one process.

Each recorded line (the aws stand-in's lossless record: argc, then each argument, NUL-terminated)
goes through `awscli.clidriver` exactly as `aws` runs it: the command table, argument parsing
(unknown commands and options, missing required ones, bad choices, shorthand and `file://`
parameters) and botocore's parameter validation and request serialization. The request is never
sent: a `before-send` handler notes the operation and stops it there. A line passes when its request
was built; it fails when the CLI refused it first. Sockets to anything but loopback raise, and the
credentials are dummies from the environment, so nothing can leave the machine.

Identical lines are checked once: the stand-in records file arguments as copies named by their
checksum, so two identical lines are the same input to the CLI, and the suites repeat many calls
(both bats passes record every line).

Usage: replay.py RECORD [--expect-fail]   (exit 0 when every line passes; 1 otherwise)
"""

from __future__ import annotations

import io
import os
import socket
import sys
from contextlib import redirect_stderr, redirect_stdout

os.environ.update({
    "AWS_ACCESS_KEY_ID": "AKIAREPLAYREPLAYREPL", "AWS_SECRET_ACCESS_KEY": "replay-secret-not-a-real-one",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
})
os.environ.pop("AWS_PROFILE", None)

_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"replay: blocked a connection to {host!r}")
    return _connect(self, address)


socket.socket.connect = _loopback_only

from awscli.clidriver import create_clidriver  # noqa: E402  (after the environment is set)


class Built(Exception):
    """Raised by the before-send hook: the request was parsed, validated and serialized."""


def read_record(path: str) -> list[list[str]]:
    words = open(path, "rb").read().split(b"\0")
    lines, i = [], 0
    while i < len(words) and words[i]:
        n = int(words[i])
        lines.append([w.decode() for w in words[i + 1:i + 1 + n]])
        i += 1 + n
    return lines


class Drivers:
    """One CLI driver per set of top-level options (--region, --output, --profile, ...).

    Building a driver takes about 0.3 s, so one per line made the replay take minutes. What a line
    leaves behind in a driver is what its top-level options set in the driver's session (region,
    output, profile, ...); command parsing and validation keep nothing. So lines whose top-level
    options are the same share a driver, and each sees exactly what a fresh `aws` would see.
    """

    def __init__(self):
        self.drivers = {}
        self.built: list[str] = []
        probe = create_clidriver()
        self.top_level = {"--" + name for name in probe.session.get_data("cli")["options"]}

    def for_line(self, argv: list[str]):
        key = tuple((word, argv[i + 1] if i + 1 < len(argv) else None)
                    for i, word in enumerate(argv) if word.split("=", 1)[0] in self.top_level)
        if key not in self.drivers:
            driver = create_clidriver()
            driver.session.register("before-send", self.hook)
            self.drivers[key] = driver
        return self.drivers[key]

    def hook(self, request, **kwargs):
        self.built.append(request.url)
        raise Built()


DRIVERS: Drivers | None = None


def check(argv: list[str]) -> tuple[bool, str]:
    """(request built, what the CLI said)."""
    global DRIVERS
    if DRIVERS is None:
        DRIVERS = Drivers()
    driver = DRIVERS.for_line(argv)
    built = DRIVERS.built
    built.clear()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            driver.main(argv)
        except SystemExit:
            pass
    said = " ".join(err.getvalue().split())
    return bool(built), said


def main() -> int:
    record = sys.argv[1]
    expect_fail = "--expect-fail" in sys.argv[2:]
    lines = read_record(record)
    if not lines:
        print(f"replay: {record} holds no aws command line")
        return 1
    bad = 0
    shapes = set()
    distinct = list(dict.fromkeys(tuple(argv) for argv in lines))
    for argv in map(list, distinct):
        ok, said = check(argv)
        shapes.add(" ".join(argv[:2]))
        if ok == expect_fail:
            bad += 1
            print(("ACCEPTED " if expect_fail else "REFUSED ") + "aws " + " ".join(argv)[:300] + f"\n    {said[:400]}")
    print(f"replay: {len(lines)} aws command lines ({len(distinct)} distinct, {len(shapes)} commands) through awscli's parser, "
          f"{bad} {'accepted' if expect_fail else 'refused'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
