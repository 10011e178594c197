"""Every command in the docs and the README is exercised here, or marked as needing Azure.

Fenced blocks say what they are in their info string:
- ``sh``: run here, from the repository root, in a sandbox (own HOME, tmux socket directory, state
  directory and .env; probes on loopback). The block must exit 0.
- ``sh azure``: needs a real Azure subscription (or Functions Core Tools). Checked for shell syntax,
  and every ``az`` command in it must be a real az CLI command (the list below, from the az CLI
  reference).
- ``sh ci``: the test command itself; it must be what .ci/run runs.
- ``kusto``: checked by tests/infra (Kusto.Language).
- ``ini`` / ``xml``: the systemd unit and launchd plist in docs/agent.md: parsed, and the agent is
  run with their command line and settings against a local handler.
- ``text``, ``json``, ``bicep``: shown, not run.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
KNOWN_KINDS = {"sh", "sh azure", "sh ci", "kusto", "ini", "xml", "text", "json", "bicep"}

# az CLI commands the docs may use (az CLI reference, learn.microsoft.com/cli/azure; the
# application-insights extension for `monitor app-insights`).
KNOWN_AZ = {
    "account show",
    "deployment group create",
    "deployment group what-if",
    "extension add",
    "functionapp config appsettings list",
    "functionapp deployment source config-zip",
    "functionapp function keys list",
    "functionapp function keys set",
    "functionapp list-flexconsumption-locations",
    "group create",
    "group delete",
    "group exists",
    "login",
    "monitor action-group list",
    "monitor action-group test-notifications create",
    "monitor app-insights query",
    "webapp log tail",
}


def blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((doc.relative_to(REPO).as_posix(), line, match.group(1).strip(), match.group(2)))
    return found


def blocks_of(kind: str) -> list:
    return [pytest.param(body, id=f"{doc}:{line}") for doc, line, k, body in blocks() if k == kind]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "TMUX_TMPDIR": str(tmp_path / "tmux"),
        "ISP_MONITOR_ENV_FILE": str(tmp_path / "no.env"),
        "HEARTBEAT_STATE_DIR": str(tmp_path / "state"),
        "HEARTBEAT_PROBE_TARGETS": "127.0.0.1:9",
        "LANG": "C.UTF-8",
    }
    for key in ("CARGO_HOME", "RUSTUP_HOME", "CARGO_TARGET_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("CARGO_HOME", str(Path.home() / ".cargo"))
    env.setdefault("RUSTUP_HOME", str(Path.home() / ".rustup"))
    for name in ("home", "tmux", "state"):
        (tmp_path / name).mkdir(mode=0o700)
    # The scripts would otherwise build release binaries first (minutes with LTO on two cores);
    # they use these instead, as documented. Their own build step is tested in tests/scripts.
    subprocess.run(["cargo", "build", "--quiet", "--bins"], cwd=REPO, check=True)
    env["ISP_MONITOR_AGENT_BIN"] = str(REPO / "target" / "debug" / "heartbeat-agent")
    env["ISP_MONITOR_HANDLER_BIN"] = str(REPO / "target" / "debug" / "handler")
    yield env
    subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)


def test_every_block_says_what_it_is():
    """No block is left ambiguous: each one is run, marked as needing Azure, or shown."""
    unknown = [f"{doc}:{line}: ```{kind}" for doc, line, kind, _ in blocks() if kind not in KNOWN_KINDS]
    assert unknown == [], "blocks without a known kind:\n" + "\n".join(unknown)


@pytest.mark.parametrize("body", blocks_of("sh"))
def test_local_commands_work(body: str, sandbox: dict[str, str]):
    """Each runnable block works as written, on loopback only."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body], cwd=REPO, env=sandbox, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if "curl" in body and "/api/ping" in body:
        assert re.search(r"^ok$", result.stdout, re.M), f"no heartbeat accepted:\n{result.stdout}"


@pytest.mark.parametrize("body", blocks_of("sh azure"))
def test_azure_commands_are_real_az_commands(body: str):
    """Blocks that need Azure are valid shell, and use only commands the az CLI has."""
    syntax = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    for line in body.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        while "az" in words:
            words = words[words.index("az") + 1 :]
            path = []
            for word in words:
                if word.startswith(("-", "$")) or "=" in word or "/" in word:
                    break
                path.append(word)
            command = " ".join(path)
            assert any(command == known or command.startswith(known + " ") for known in KNOWN_AZ) and command in KNOWN_AZ, (
                f"`az {command}` is not a known az command: {line}"
            )


@pytest.mark.parametrize("body", blocks_of("sh ci"))
def test_ci_command_is_what_ci_runs(body: str):
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for command in filter(None, (line.strip() for line in body.splitlines())):
        assert command in ci, f"{command!r} is not what .ci/run runs"


def agent_binary() -> Path:
    subprocess.run(["cargo", "build", "--quiet", "--bins"], cwd=REPO, check=True)
    return REPO / "target" / "debug" / "heartbeat-agent"


def run_agent_briefly(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Runs the agent against a local handler for a few heartbeats, stops it with SIGTERM (as
    systemd and launchd do), and returns what it printed."""
    port = free_port()
    handler = subprocess.Popen(
        [str(REPO / "target" / "debug" / "handler")],
        env={"PATH": os.environ["PATH"], "FUNCTIONS_CUSTOMHANDLER_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        env = {**env, "HEARTBEAT_URL": f"http://127.0.0.1:{port}/api/ping", "HEARTBEAT_INTERVAL": "1",
               "HEARTBEAT_PROBE_TARGETS": "127.0.0.1:9", "PATH": os.environ["PATH"]}
        agent = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2.5)
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=10)
        assert agent.returncode == 0, out
        return out
    finally:
        handler.terminate()
        handler.wait(timeout=10)


@pytest.mark.parametrize("body", blocks_of("ini"))
def test_systemd_unit_runs_the_agent(body: str, tmp_path: Path):
    """The systemd unit parses, restarts the agent, and its ExecStart with its EnvironmentFile (an
    .env in the documented format) runs the agent as a daemon."""
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str
    unit.read_string(body)
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "default.target"
    home = tmp_path / "home"
    env_file = Path(service["EnvironmentFile"].replace("%h", str(home)))
    exec_start = shlex.split(service["ExecStart"].replace("%h", str(home)))
    assert exec_start[1:] == ["--daemon"]
    Path(exec_start[0]).parent.mkdir(parents=True)
    Path(exec_start[0]).symlink_to(agent_binary())
    # The .env the scripts write, as systemd reads it: KEY=value lines, comments, empty values.
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    env_file.write_text(example + f"\nHEARTBEAT_STATE_DIR={tmp_path / 'state'}\n", encoding="utf-8")
    env = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    out = run_agent_briefly(exec_start, env, tmp_path)
    assert re.search(r" ok status=200 ", out), out


@pytest.mark.parametrize("body", blocks_of("xml"))
def test_launchd_plist_runs_the_agent(body: str, tmp_path: Path):
    """The launchd plist parses, keeps the agent alive, and its arguments run it as a daemon."""
    plist = plistlib.loads(body.encode())
    assert plist["KeepAlive"] is True and plist["RunAtLoad"] is True
    arguments = plist["ProgramArguments"]
    assert Path(arguments[0]).name == "heartbeat-agent" and arguments[1:] == ["--daemon"]
    assert {"HEARTBEAT_URL", "HEARTBEAT_KEY"} <= set(plist["EnvironmentVariables"])
    env = {**plist["EnvironmentVariables"], "HEARTBEAT_STATE_DIR": str(tmp_path / "state")}
    out = run_agent_briefly([str(agent_binary()), *arguments[1:]], env, tmp_path)
    assert re.search(r" ok status=200 ", out), out
