"""aws/template.yaml through the real cfn-lint, and the properties the design relies on."""

from __future__ import annotations

import subprocess

import pytest
from conftest import TEMPLATE, VENV_BIN

CFN_LINT = str(VENV_BIN / "cfn-lint")


def cfn_lint(path) -> subprocess.CompletedProcess:
    return subprocess.run([CFN_LINT, "--format", "parseable", str(path)], capture_output=True, text=True, timeout=300)


def test_cfn_lint_passes_with_no_error():
    """cfn-lint (which expands Fn::ForEach itself) finds no error or warning in the template."""
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "change, rule",
    [
        # Without the transform, Fn::ForEach is not a resource.
        (("Transform: AWS::LanguageExtensions\n", ""), "E1032"),
        # A property of the wrong type.
        (("InvokedViaFunctionUrl: true", "InvokedViaFunctionUrl: yes-please"), "E3012"),
        # A runtime that does not exist.
        (("Runtime: provided.al2023", "Runtime: provided.al2099"), "E3030"),
    ],
)
def test_cfn_lint_fails_on_a_broken_template(tmp_path, change, rule):
    """The check can fail: each broken copy of the template is refused with the expected rule."""
    old, new = change
    text = TEMPLATE.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert rule in result.stdout, result.stdout
