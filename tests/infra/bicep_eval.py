"""A small evaluator for the parts of main.bicep the tests reason about.

No Bicep CLI can run here, so the template is parsed with pycep (the parser checkov itself uses) and the
expressions that decide what is deployed — the queries (loadTextContent + replace), rule frequencies,
thresholds, conditions, names — are evaluated for given parameter values. Anything this evaluator does
not understand raises `Unsupported` instead of guessing, so a test can never pass on a misreading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Unsupported(Exception):
    """An expression outside what the tests need; extend the evaluator rather than work around it."""


@dataclass
class Template:
    path: Path
    parsed: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, **params: Any) -> "Template":
        parsed = BicepParser().parse(file_path=path)
        template = cls(path=path, parsed=parsed)
        template.params = template.parameter_values(params)
        return template

    def with_params(self, **params: Any) -> "Template":
        """The same parsed template evaluated for other parameter values."""
        template = Template(path=self.path, parsed=self.parsed)
        template.params = template.parameter_values(params)
        return template

    # -- parameters -------------------------------------------------------------------------------

    def parameter_values(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.parsed["parameters"])
        if unknown:
            raise KeyError(f"main.bicep has no parameter {sorted(unknown)}")
        values = {}
        for name, spec in self.parsed["parameters"].items():
            if name in given:
                values[name] = given[name]
            elif "default" in spec and not isinstance(spec["default"], (dict, str)):
                values[name] = spec["default"]
            elif isinstance(spec.get("default"), str) and not spec["default"].startswith("resourceGroup"):
                values[name] = spec["default"]
            elif isinstance(spec.get("default"), dict) and spec["default"] == {}:
                values[name] = {}
            else:
                values[name] = _Opaque(f"param {name}")
        return values

    def decorators(self, param: str) -> dict[str, Any]:
        return {d["type"]: d.get("argument") for d in self.parsed["parameters"][param]["decorators"]}

    # -- resources --------------------------------------------------------------------------------

    def resource(self, symbol: str) -> dict[str, Any]:
        """The resource's body (name, properties, ...) as pycep parsed it, whatever its condition."""
        config = self.parsed["resources"][symbol]["config"]
        return config["config"] if "condition" in config else config

    def resource_type(self, symbol: str) -> str:
        return self.parsed["resources"][symbol]["type"]

    def deployed(self, symbol: str) -> bool:
        config = self.parsed["resources"][symbol]["config"]
        return bool(self.eval(config["condition"])) if "condition" in config else True

    def symbols_of_type(self, resource_type: str) -> list[str]:
        return [s for s, r in self.parsed["resources"].items() if r["type"] == resource_type]

    # -- expressions ------------------------------------------------------------------------------

    def eval(self, node: Any) -> Any:
        if isinstance(node, bool) or isinstance(node, (int, float)) or node is None:
            return node
        if isinstance(node, str):
            return self._string(node)
        if isinstance(node, list):
            return [self.eval(item) for item in node]
        if isinstance(node, dict):
            if set(node) == {"function"}:
                return self._function(node["function"])
            if set(node) == {"operator"}:
                return self._operator(node["operator"])
            return {_key(k): self.eval(v) for k, v in node.items()}
        raise Unsupported(f"node {node!r}")

    def _string(self, text: str) -> Any:
        if IDENTIFIER.match(text):
            if text in self.params:
                return self.params[text]
            if text in self.parsed["variables"]:
                return self.eval(self.parsed["variables"][text]["value"])
            return text  # a literal that looks like a name ('LogAlert', 'device', ...)

        def interpolate(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            if not IDENTIFIER.match(inner):
                raise Unsupported(f"interpolation ${{{inner}}}")
            value = self._string(inner)
            if isinstance(value, _Opaque):
                raise Unsupported(f"interpolation of {value}")
            return str(value).lower() if isinstance(value, bool) else str(value)

        return INTERPOLATION.sub(interpolate, text)

    def _function(self, fn: dict[str, Any]) -> Any:
        kind, args = fn["type"], fn["parameters"]
        if kind == "load_text_content":
            return (self.path.parent / args["file_path"]).read_text(encoding="utf-8")
        if kind == "replace":
            return str(self.eval(args["original_string"])).replace(
                str(self.eval(args["old_string"])), str(self.eval(args["new_string"]))
            )
        if kind == "string":
            return str(self.eval(args["value_to_convert"]))
        if kind == "take":
            return self.eval(args["original_value"])[: self.eval(args["number_to_take"])]
        if kind in ("max", "min"):
            values = [self.eval(v) for v in args.values()]
            return max(values) if kind == "max" else min(values)
        if kind == "unique_string":
            return "u" * 13  # uniqueString() is always 13 characters; its value only Azure computes
        if kind == "to_lower":
            value = self.eval(args["string_to_change"])
            if isinstance(value, Reference):
                return Reference(value.path, lower=True)
            if isinstance(value, _Opaque):
                raise Unsupported(f"toLower of {value}")
            return str(value).lower()
        if kind == "empty":
            return len(self.eval(args["item_to_test"])) == 0
        if kind == "concat":
            values = [self.eval(v) for v in args.values()]
            if all(isinstance(v, list) for v in values):
                return [item for v in values for item in v]
            return "".join(str(v) for v in values)
        raise Unsupported(f"function {kind}")

    def _operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            base = operands["operand_1"]
            if isinstance(base, str) and base in self.parsed["resources"]:
                return Reference(f"{base}.{_path(operands['operand_2'])}")
            value = self.eval(base)
            if isinstance(value, Reference):
                return Reference(f"{value.path}.{_path(operands['operand_2'])}")
            return value[_path(operands["operand_2"])]
        if kind == "index_accessor":
            return self.eval(operands["operand_1"])[self.eval(operands["operand_2"])]
        if kind == "conditional":
            return self.eval(operands["true_value"] if self.eval(operands["condition"]) else operands["false_value"])
        binary = {
            "add": lambda a, b: a + b,
            "greater_than": lambda a, b: a > b,
            "greater_than_or_equals": lambda a, b: a >= b,
            "less_than": lambda a, b: a < b,
            "equals": lambda a, b: a == b,
            "not_equals": lambda a, b: a != b,
        }
        if kind in binary:
            return binary[kind](self.eval(operands["operand_1"]), self.eval(operands["operand_2"]))
        raise Unsupported(f"operator {kind}")


class _Opaque:
    """A value only Azure knows at deployment time (resourceGroup().location, ...)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class Reference:
    """A resource property only known once deployed (`appInsights.id`, ...), by its path; `lower`
    when the template lower-cases it (`toLower(appInsights.id)`)."""

    def __init__(self, path: str, lower: bool = False) -> None:
        self.path = path
        self.lower = lower

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and other.path == self.path and other.lower == self.lower

    def __hash__(self) -> int:
        return hash((self.path, self.lower))

    def __repr__(self) -> str:
        return f"Reference({self.path!r}{', lower=True' if self.lower else ''})"


def _path(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return f"{_path(operands['operand_1'])}.{_path(operands['operand_2'])}"
    raise Unsupported(f"property path {node!r}")


def _key(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


ISO_MINUTES = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")


def iso_minutes(duration: str) -> int:
    """Minutes in an ISO 8601 duration of the forms the rules use (PT5M, PT1H, P2D)."""
    if duration.startswith("P") and duration.endswith("D") and duration[1:-1].isdigit():
        return int(duration[1:-1]) * 24 * 60
    match = ISO_MINUTES.match(duration)
    if not match or not any(match.groups()):
        raise Unsupported(f"duration {duration!r}")
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    return hours * 60 + minutes
