"""Shared paths of the AWS tests."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = REPO / "aws" / "template.yaml"
VENV_BIN = HERE / ".venv" / "bin"
