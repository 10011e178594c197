"""Checks az command lines with the real Azure CLI (PyPI `azure-cli`), offline, in one process.

The CLI is loaded once; each command line goes through `get_default_cli().invoke`, which loads the
command table, parses the arguments (argparse: unknown commands, unknown or missing arguments, bad
choices) and runs the command's validators, exactly as `az` does. The command itself is not run:
`AzCliCommandInvoker._run_job`, the step after parsing and validation, is replaced by a marker. Run
for real, a valid command stops at "Please run 'az login'" (exit 1), but some do other things
first: `deployment group create --template-file x.bicep` downloads the Bicep CLI, `az login` opens
a browser, `az extension add` downloads a wheel. `check(..., run=True)` runs the real command, for
the tests that show that premise.

Nothing leaves the machine: telemetry, dynamic extension install and the extension command tree are
switched off through the CLI's documented environment settings, and every socket connection or
name lookup to anything but loopback raises (and is counted in `Checker.blocked`).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Options whose value is a secret: never printed.
SECRET_OPTIONS = {"--key-value", "--password", "--secret", "--sas-token", "--connection-string", "--account-key",
                  "--api-key", "--value"}
HIDDEN = "(hidden)"


def secrets_of(argv: list[str]) -> list[str]:
    """The values given to secret options."""
    return [value for option, value in zip(argv, argv[1:]) if option in SECRET_OPTIONS and value
            and not value.startswith("-")]


def redact(argv: list[str]) -> list[str]:
    """argv with every secret value hidden, wherever it appears."""
    secrets = secrets_of(argv)
    out = []
    for word in argv:
        for secret in secrets:
            word = word.replace(secret, HIDDEN)
        out.append(word)
    return out


def shown(argv: list[str], width: int = 100) -> str:
    """One line for a report: secrets hidden, long values (KQL queries) shortened."""
    words = []
    for word in redact(argv):
        word = word.replace("\n", "\\n")
        words.append(word if len(word) <= 60 else word[:57] + "...")
    line = "az " + " ".join(words)
    return line if len(line) <= width * 3 else line[: width * 3] + "..."


def shape(argv: list[str]) -> tuple[str, ...]:
    """Lines that differ only in the directories of their paths (each bats test has its own temp
    directory) are one shape, checked once."""
    return tuple(re.sub(r"/[^\s]*/", "/.../", word) for word in argv)


def read_record(path: Path) -> list[list[str]]:
    """Reads the az stand-in's argv record: argc, then each argument, each NUL-terminated."""
    fields = path.read_bytes().split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    calls, i = [], 0
    while i < len(fields):
        try:
            argc = int(fields[i])
        except ValueError:
            raise ValueError(f"{path}: field {i} is not an argument count: {fields[i][:40]!r}") from None
        if i + 1 + argc > len(fields):
            raise ValueError(f"{path}: the last record is cut short")
        calls.append([f.decode("utf-8", "surrogateescape") for f in fields[i + 1 : i + 1 + argc]])
        i += 1 + argc
    return calls


@dataclass
class Result:
    ok: bool
    code: object
    message: str


class _Reached(Exception):
    pass


class Checker:
    def __init__(self) -> None:
        self.config_dir = tempfile.mkdtemp(prefix="azcli-config-")
        os.environ["AZURE_CONFIG_DIR"] = self.config_dir
        os.environ["AZURE_CORE_COLLECT_TELEMETRY"] = "no"
        os.environ["AZURE_EXTENSION_USE_DYNAMIC_INSTALL"] = "no"
        os.environ["AZURE_CORE_NO_COLOR"] = "true"
        os.environ["AZURE_CORE_SURVEY_MESSAGE"] = "false"
        os.environ["AZURE_CORE_ONLY_SHOW_ERRORS"] = "false"
        self.blocked: list[str] = []
        self._guard_network()
        self._seed_version_cache()
        from azure.cli.core import get_default_cli
        from azure.cli.core.commands import AzCliCommandInvoker

        self._get_cli = get_default_cli
        self._real_run_job = AzCliCommandInvoker._run_job
        self._run = False
        self.reached: str | None = None
        checker = self

        def run_job(invoker, expanded_arg, cmd_copy):
            checker.reached = cmd_copy.name
            if checker._run:
                return checker._real_run_job(invoker, expanded_arg, cmd_copy)
            return None

        AzCliCommandInvoker._run_job = run_job

    def _seed_version_cache(self) -> None:
        """On its first run with a config directory the CLI asks its own storage for the newest
        versions (an upgrade hint). A fresh cache of the installed versions answers it instead."""
        import datetime
        import json
        from importlib.metadata import version

        cli, core, telemetry = (version(p) for p in ("azure-cli", "azure-cli-core", "azure-cli-telemetry"))
        versions = {"azure-cli": {"local": cli, "pypi": cli}, "core": {"local": core, "pypi": core},
                    "telemetry": {"local": telemetry, "pypi": telemetry}}
        Path(self.config_dir, "versionCheck.json").write_text(
            json.dumps({"versions": versions, "update_time": str(datetime.datetime.now())}), encoding="utf-8")

    def _guard_network(self) -> None:
        blocked = self.blocked
        connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

        def loopback(host: object) -> bool:
            return str(host) in ("localhost", "::1") or str(host).startswith("127.")

        def guarded_connect(sock, address):
            host = address[0] if isinstance(address, tuple) else address
            if isinstance(address, tuple) and not loopback(host):
                blocked.append(str(host))
                raise OSError(f"tests/azcli: no network ({host})")
            return connect(sock, address)

        def guarded_getaddrinfo(host, *args, **kwargs):
            if not loopback(host):
                blocked.append(str(host))
                raise socket.gaierror(f"tests/azcli: no network ({host})")
            return getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = guarded_connect
        socket.getaddrinfo = guarded_getaddrinfo

    def check(self, argv: list[str], run: bool = False) -> Result:
        """Parses argv (the words after `az`) with the real CLI. ok: parsed and validated (or, with
        run=True, whatever the command did)."""
        self.reached, self._run = None, run
        with tempfile.TemporaryFile() as captured:
            sys.stdout.flush()
            sys.stderr.flush()
            saved = os.dup(1), os.dup(2)
            os.dup2(captured.fileno(), 1)
            os.dup2(captured.fileno(), 2)
            try:
                cli = self._get_cli()
                try:
                    code = cli.invoke(list(argv), out_file=sys.stdout)
                except SystemExit as exit_:
                    code = exit_.code
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
            captured.seek(0)
            message = captured.read().decode("utf-8", "replace").strip()
        for secret in secrets_of(argv):
            message = message.replace(secret, HIDDEN)
        if run:
            ok = code == 0
        else:
            # Parsed and validated: the command was reached, or a validator stopped at the login
            # (after parsing; e.g. `webapp log tail`), the answer of a valid line run for real.
            ok = (self.reached is not None and code == 0) or (code == 1 and "Please run 'az login'" in message)
        return Result(ok, code, message)


# ------------------------------------------------------------------------------------------------
# Commands of az extensions that cannot be installed here.
#
# `monitor app-insights query` comes with the `application-insights` extension. Extensions are
# wheels served from the Azure CLI's own index (azcliprod blob storage), not from PyPI, so
# `az extension add` cannot work offline and CI cannot reach it: without the extension the real
# parser answers "'app-insights' is misspelled or not recognized". Its arguments are therefore
# checked against the extension's own definitions in its public source, Azure/azure-cli-extensions
# `src/application-insights/azext_applicationinsights/_params.py` (argument context
# 'monitor app-insights query') and `custom.py` (`execute_query`), described here in our own words:
# docs/platform.md §7.

GLOBAL_FLAGS = {"--only-show-errors", "--debug", "--verbose", "--help", "-h"}
GLOBAL_VALUES = {"--output": ("json", "jsonc", "none", "table", "tsv", "yaml", "yamlc"), "-o": None,
                 "--query": None, "--subscription": None}
GLOBAL_VALUES["-o"] = GLOBAL_VALUES["--output"]


@dataclass
class ExtensionCommand:
    extension: str
    # option spelling -> (canonical name, "+" for one or more values, "1" for exactly one)
    options: dict[str, tuple[str, str]]
    required: tuple[str, ...]


EXTENSION_COMMANDS = {
    ("monitor", "app-insights", "query"): ExtensionCommand(
        extension="application-insights",
        options={
            "--apps": ("apps", "+"), "-a": ("apps", "+"),
            "--analytics-query": ("analytics-query", "1"),
            "--start-time": ("start-time", "1"),
            "--end-time": ("end-time", "1"),
            "--offset": ("offset", "1"),
            "--resource-group": ("resource-group", "1"), "-g": ("resource-group", "1"),
        },
        required=("apps", "analytics-query"),
    ),
}


def extension_command(argv: list[str]) -> tuple[tuple[str, ...], ExtensionCommand] | None:
    for path, command in EXTENSION_COMMANDS.items():
        if tuple(argv[: len(path)]) == path:
            return path, command
    return None


def check_extension_line(argv: list[str]) -> Result:
    """Checks a command line of an extension command against its parameter definitions: every
    option known, each with its number of values, the required ones present, and --offset and
    the times parsed by the real CLI's own types (the extension uses them)."""
    found = extension_command(argv)
    assert found, argv
    path, command = found
    words, seen, problems, i = argv[len(path) :], {}, [], 0
    while i < len(words):
        word = words[i]
        i += 1
        if word in GLOBAL_FLAGS:
            continue
        if word in GLOBAL_VALUES:
            if i >= len(words):
                problems.append(f"argument {word}: expected one argument")
                break
            choices = GLOBAL_VALUES[word]
            if choices and words[i] not in choices:
                problems.append(f"argument {word}: invalid choice: '{words[i]}'")
            i += 1
            continue
        if word not in command.options and word.startswith("--"):
            # argparse, as az uses it, takes an unambiguous prefix of a long option.
            prefixed = {command.options[o] for o in command.options if o.startswith(word) and o.startswith("--")}
            if len(prefixed) == 1:
                word = next(o for o in command.options if command.options[o] == next(iter(prefixed)))
        if word not in command.options:
            problems.append(f"unrecognized arguments: {word}")
            continue
        name, arity = command.options[word]
        values = []
        while i < len(words) and (not words[i].startswith("-") or (arity == "1" and not values)):
            values.append(words[i])
            i += 1
            if arity == "1":
                break
        if not values:
            problems.append(f"argument {word}: expected {'at least one argument' if arity == '+' else 'one argument'}")
        seen[name] = values
    for name in command.required:
        if name not in seen:
            problems.append(f"the following arguments are required: --{name}")
    if "offset" in seen and seen["offset"]:
        from azure.cli.command_modules.monitor.actions import get_period_type

        try:
            get_period_type(as_timedelta=True)(seen["offset"][0])
        except Exception as error:  # noqa: BLE001 - the type's own error is the message
            problems.append(f"argument --offset: invalid value '{seen['offset'][0]}': {error}")
    for name in ("start-time", "end-time"):
        if seen.get(name):
            from azure.cli.core.commands.parameters import get_datetime_type

            try:
                get_datetime_type(help="")().settings["type"](seen[name][0])
            except Exception as error:  # noqa: BLE001
                problems.append(f"argument --{name}: invalid value '{seen[name][0]}': {error}")
    return Result(not problems, 0 if not problems else 2, "; ".join(problems))
