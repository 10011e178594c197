"""aws/template.yaml through the real cfn-lint (PyPI, in-process), and proof the check can fail."""

from __future__ import annotations

import functools

from cfnlint.api import ManualArgs, lint
from conftest import TEMPLATE

REGIONS = ["us-east-1"]


@functools.cache
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def rules(text: str) -> list[str]:
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in lint(text, config=ManualArgs(regions=REGIONS))]


def test_cfn_lint_passes_with_no_error():
    """cfn-lint (which expands Fn::ForEach itself) finds no error, warning or informational match."""
    assert rules(template_text()) == []


BREAKAGES = {
    # Without the transform, Fn::ForEach is not a resource.
    "E1032": ("Transform: AWS::LanguageExtensions\n", ""),
    # A property of the wrong type.
    "E3012": ("InvokedViaFunctionUrl: true", "InvokedViaFunctionUrl: yes-please"),
    # A runtime that does not exist.
    "E3030": ("Runtime: provided.al2023", "Runtime: provided.al2099"),
}


def test_cfn_lint_fails_on_a_broken_template():
    """The check can fail: a copy with three known mistakes is refused with each one's rule."""
    text = template_text()
    for old, new in BREAKAGES.values():
        assert old in text
        text = text.replace(old, new, 1)
    found = " ".join(rules(text))
    for rule in BREAKAGES:
        assert rule in found, found
