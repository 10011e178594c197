"""Shared paths of the AWS tests, and the SNS/CloudWatch stand-in they run."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = REPO / "aws" / "template.yaml"
VENV_BIN = HERE / ".venv" / "bin"


class SnsStandIn:
    """tests/aws/sns_standin.py running on loopback with these arguments: `port` it listens on,
    and `records`, one dict per request it received (appended as they come)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(VENV_BIN / "python"), str(HERE / "sns_standin.py"), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.port = int(self.process.stdout.readline().split()[1])
        self.records: list[dict] = []
        threading.Thread(target=lambda: [self.records.append(json.loads(l)) for l in self.process.stdout], daemon=True).start()

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
