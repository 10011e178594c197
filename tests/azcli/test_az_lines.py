"""Every az command line the project runs or shows is checked by the real Azure CLI's parser.

- The lines the az stand-in (tests/scripts/stubs/az) recorded while the bats suites ran deploy.sh
  (deploy, --check, --what-if, --test-alert) and scripts/report.sh: AZ_REPLAY_RECORD names the
  record (tests/azcli/run.sh makes one when it is not given).
- Every `az` line of the docs: each line of a ```sh azure block, and each inline `az ...` span
  (a span may leave out required arguments; everything else must parse).

They go through PyPI `azure-cli` in this process (tests/azcli/azparse.py), identical shapes once.
Lines of extension commands that cannot be installed offline are checked against the extension's
parameter definitions instead (reason in azparse.py).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from pathlib import Path

import pytest

import azparse

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`(az [^`]+)`(?!`)")
# Sample values for the shell variables the docs use in az lines.
DOC_VARIABLES = {"RG": "isp-monitor", "APP": "ispmon-func-abc123", "ACTION_GROUP": "ispmon-alerts-abc123",
                 "ALERT_EMAIL": "me@example.com"}
# Commands deploy.sh and report.sh must have been seen calling, or the record is not what it should be.
EXPECTED = [
    "account show", "extension show", "group exists", "group create", "deployment group create",
    "deployment group what-if", "functionapp deployment source config-zip", "functionapp function keys list",
    "resource list", "monitor app-insights query", "monitor action-group list",
    "monitor action-group test-notifications create",
    "functionapp show", "functionapp list-flexconsumption-locations",
]


@pytest.fixture(scope="session")
def checker() -> azparse.Checker:
    return azparse.Checker()


def check_all(checker: azparse.Checker, lines: list[list[str]], lenient: bool = False) -> tuple[int, list[str]]:
    """Checks each distinct shape once; returns how many were checked and the failures."""
    failures, done = [], set()
    for argv in lines:
        key = azparse.shape(argv)
        if key in done:
            continue
        done.add(key)
        if azparse.extension_command(argv):
            result = azparse.check_extension_line(argv)
        else:
            result = checker.check(argv)
        if not result.ok and lenient and ("the following arguments are required" in result.message
                                          or result.message.startswith("ERROR: usage error:")):
            continue
        if not result.ok:
            failures.append(f"{azparse.shown(argv)}\n    exit {result.code}: {result.message.splitlines()[0] if result.message else ''}")
    return len(done), failures


def recorded_lines() -> list[list[str]]:
    record = os.environ.get("AZ_REPLAY_RECORD")
    if not record:
        pytest.fail("AZ_REPLAY_RECORD is not set: run tests/azcli/run.sh (it records the bats suites' az calls)")
    return azparse.read_record(Path(record))


def az_words(line: str) -> list[list[str]]:
    """The argv of each az command on a shell line, with $VARIABLES replaced by sample values."""
    found = []
    words = shlex.split(line, comments=True)
    while "az" in words:
        words = words[words.index("az") + 1 :]
        argv = []
        for word in words:
            if word in ("|", "||", "&&", ";", ">", "2>", ")"):
                break
            argv.append(word)
        for i, word in enumerate(argv):
            for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", word):
                assert name in DOC_VARIABLES, f"${name} in `{line}` has no sample value in DOC_VARIABLES"
                word = re.sub(r"\$\{?" + name + r"\}?", DOC_VARIABLES[name], word)
            argv[i] = word
        found.append(argv)
    return found


def doc_lines() -> tuple[list[list[str]], list[list[str]]]:
    """(lines of ```sh azure blocks, inline `az ...` spans) of every doc."""
    blocks, spans = [], []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group(1).strip() == "sh azure":
                for line in match.group(2).splitlines():
                    blocks.extend(az_words(line))
        outside = BLOCK.sub("", text)
        for match in INLINE.finditer(outside):
            span = match.group(1)
            if "|" in span:  # `az deployment group create|what-if` names two commands; not a command line
                continue
            spans.extend(az_words(span))
    return blocks, spans


# --------------------------------------------------------------------------------------- premises

def test_the_real_cli_answers_as_expected_offline(checker: azparse.Checker):
    """What this suite relies on, shown with the CLI running the command for real: a valid line
    stops at the login, an unknown argument exits 2 (an unknown command: the next test); and
    nothing reached the network."""
    valid = checker.check(["group", "exists", "-n", "isp-monitor", "-o", "json"], run=True)
    assert valid.code == 1 and "Please run 'az login'" in valid.message, valid
    unknown_arg = checker.check(["group", "exists", "-n", "isp-monitor", "--colour", "red"], run=True)
    assert unknown_arg.code == 2 and "unrecognized arguments: --colour red" in unknown_arg.message, unknown_arg
    # Without running the command: the valid line passes, the others fail the same way.
    assert checker.check(["group", "exists", "-n", "isp-monitor", "-o", "json"]).ok
    assert not checker.check(["group", "exists", "-n", "isp-monitor", "--colour", "red"]).ok
    assert checker.blocked == [], f"the CLI tried to reach {checker.blocked}"


def test_the_extension_command_is_not_in_the_installed_cli(checker: azparse.Checker):
    """`monitor app-insights query` needs the application-insights extension, which is not on PyPI
    and cannot be installed offline: the real parser does not know it, and says so as it does for
    any unknown command (exit 2). (If this starts to pass through the real parser, drop it from
    EXTENSION_COMMANDS.) The unknown-command path loads every command module: about 10 s, once."""
    result = checker.check(["monitor", "app-insights", "query", "--apps", "x", "--analytics-query", "requests"])
    assert result.code == 2 and "misspelled or not recognized" in result.message, result


# ----------------------------------------------------------------------------- the lines themselves

def test_every_recorded_az_line_parses(checker: azparse.Checker):
    lines = recorded_lines()
    commands = {" ".join(w for w in argv[:5] if not w.startswith("-")) for argv in lines}
    missing = [c for c in EXPECTED if not any(seen == c or seen.startswith(c + " ") for seen in commands)]
    assert not missing, f"the record has no call of {missing}: did the bats suites run with AZ_REPLAY_RECORD?"
    start = time.monotonic()
    checked, failures = check_all(checker, lines)
    print(f"\naz lines: {len(lines)} recorded, {checked} distinct shapes checked by the real az CLI "
          f"in {time.monotonic() - start:.1f}s")
    assert not failures, "az lines the real CLI rejects:\n" + "\n".join(failures)
    assert checker.blocked == [], f"the CLI tried to reach {checker.blocked}"


def test_every_az_line_in_the_docs_parses(checker: azparse.Checker):
    blocks, spans = doc_lines()
    assert len(blocks) >= 5 and len(spans) >= 5, (blocks, spans)
    checked, failures = check_all(checker, blocks)
    checked_spans, span_failures = check_all(checker, spans, lenient=True)
    print(f"\ndocs: {checked} az lines in sh azure blocks and {checked_spans} inline az spans checked")
    assert not failures + span_failures, "az lines in the docs the real CLI rejects:\n" + "\n".join(failures + span_failures)


# ------------------------------------------------------------------------------ it can fail

@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["monitor", "action-group", "test-notifications", "create", "-g", "rg", "--action-group", "ag",
          "--alert-tpye", "logalertv2", "-a", "email", "me", "me@example.com"], "--alert-tpye"),
        (["deployment", "group", "create", "-g", "rg", "-n", "isp-monitor", "--template", "main.bicep"], "--template"),
        (["functionapp", "function", "keys", "list", "-g", "rg", "-n", "app", "--functon-name", "Ping"], "--functon-name"),
        (["monitor", "action-group", "test-notifications", "create", "-g", "rg", "--action-group", "ag"], "--alert-type"),
        (["group", "exists", "-n", "rg", "-o", "jsn"], "jsn"),
        # The Flex regions list takes no location: it lists them (deploy.sh looks for its own).
        (["functionapp", "list-flexconsumption-locations", "--location", "eastus", "-o", "json"], "--location eastus"),
        (["monitor", "app-insights", "query", "--app-id", "x", "--analytics-query", "requests"], "--app-id"),
        (["monitor", "app-insights", "query", "--apps", "x", "--analytics-query", "q", "--offset", "soon"], "soon"),
    ],
)
def test_a_misspelled_line_is_caught(checker: azparse.Checker, argv: list[str], why: str):
    checked, failures = check_all(checker, [argv])
    assert checked == 1 and len(failures) == 1, failures
    assert why in failures[0], failures[0]


def test_an_unambiguous_prefix_is_accepted_as_az_does(checker: azparse.Checker):
    """argparse in az takes `--alert-typ` for `--alert-type`: not an error, for either checker."""
    _, failures = check_all(checker, [
        ["monitor", "action-group", "test-notifications", "create", "-g", "rg", "--action-group", "ag",
         "--alert-typ", "logalertv2", "-a", "email", "me", "me@example.com"],
        ["monitor", "app-insights", "query", "--app", "x", "--analytics-query", "requests"],
    ])
    assert not failures, failures


def test_secrets_are_not_printed(checker: azparse.Checker):
    argv = ["functionapp", "function", "keys", "set", "-g", "rg", "-n", "app", "--function-name", "Ping",
            "--key-name", "default", "--key-value", "s3cret-VALUE", "--bogus", "s3cret-VALUE"]
    _, failures = check_all(checker, [argv])
    assert len(failures) == 1 and "--bogus" in failures[0], failures
    assert "s3cret-VALUE" not in failures[0], failures[0]


def test_the_record_is_read_losslessly(tmp_path: Path):
    record = tmp_path / "record"
    record.write_bytes(b"3\0group\0exists\0-n\0" + b"0\0" + b"2\0a b\0\nline\0")
    assert azparse.read_record(record) == [["group", "exists", "-n"], [], ["a b", "\nline"]]
    record.write_bytes(b"3\0group\0exists\0")
    with pytest.raises(ValueError, match="cut short"):
        azparse.read_record(record)
