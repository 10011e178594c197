"""A small evaluator for the Bicep the project deploys: main.bicep and its local modules (infra/*.bicep).

No Bicep CLI can run here, so each file is parsed with pycep (the parser checkov itself uses) and the
expressions that decide what is deployed — the queries (loadTextContent + replace), rule frequencies,
thresholds, conditions, names, app settings — are evaluated for given parameter values. Local
`module` declarations are followed (their params checked against the module's declarations: unknown
or missing names, types, @allowed, lengths and ranges) and `for` loops are expanded (array, array with
index, range, with an `if` filter), so `Template.deployment()` lists every resource a deployment would
create, in every module. Anything this evaluator does not understand raises `Unsupported`; anything
Bicep or Resource Manager would refuse (an unknown parameter, a property that does not exist, a
wrong type) raises `BicepError`: a test can never pass on a misreading.

Values only Azure knows (resource IDs, keys, `resourceGroup().location`) are `Reference`s or opaque.
A property whose value is null is left out of a deployed resource (Resource Manager sends no value).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pycep import BicepParser

INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The accessor chains an interpolation may hold: a.b.c, a[0].b, f().b, a.listKeys().keys[0].value
CHAIN = re.compile(r"^[A-Za-z_]\w*(?:\(\))?(?:\.\w+(?:\(\))?|\[\d+\])*$")
CHAIN_PART = re.compile(r"\.?(\w+)(\(\))?|\[(\d+)\]")
LOOP_KEYS = {"loop_type", "condition", "config"}


class Unsupported(Exception):
    """An expression outside what the tests need; extend the evaluator rather than work around it."""


class BicepError(Exception):
    """Something Bicep or Resource Manager would refuse: a wrong module parameter, a missing property."""


_PARSED: dict[Path, dict[str, Any]] = {}


def parse(path: Path) -> dict[str, Any]:
    path = path.resolve()
    if path not in _PARSED:
        if not path.is_file():
            raise BicepError(f"module file {path} does not exist")
        parsed = BicepParser().parse(file_path=path)
        if not parsed:
            raise BicepError(f"pycep could not parse {path}")
        for part in ("parameters", "variables", "resources", "modules", "outputs"):
            parsed.setdefault(part, {})
        _check_literals(path, parsed)
        _PARSED[path] = parsed
    return _PARSED[path]


def _check_literals(path: Path, parsed: dict[str, Any]) -> None:
    """pycep gives the literal 'x' and the name x the same text, so a literal spelled like a name in
    scope would be read as that name: refuse such a file rather than misread it."""
    text = path.read_text(encoding="utf-8")
    names = set(parsed["parameters"]) | set(parsed["variables"])
    for match in re.finditer(r"\bfor\s+\(?\s*(\w+)(?:\s*,\s*(\w+))?\s*\)?\s+in\b|\b(\w+)\s*=>", text):
        names.update(n for n in match.groups() if n)
    clashes = sorted(names & set(re.findall(r"'([A-Za-z_]\w*)'", text)))
    if clashes:
        raise Unsupported(f"{path.name}: the literal(s) {clashes} are spelled like names in scope; rename the name")


class Lazy:
    """A module parameter's value: the expression in the calling file, evaluated on first use."""

    def __init__(self, node: Any, scope: "Template") -> None:
        self.node, self.scope = node, scope

    def value(self) -> Any:
        return self.scope.eval(self.node)


@dataclass
class Template:
    path: Path
    parsed: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # main.bicep, main.bicep/alerts, main.bicep/hosting[0], ...

    @classmethod
    def load(cls, path: Path, **params: Any) -> "Template":
        template = cls(path=path, parsed=parse(path), where=path.name)
        template.params = template.parameter_values(params)
        return template

    def with_params(self, **params: Any) -> "Template":
        """The same parsed template evaluated for other parameter values."""
        template = Template(path=self.path, parsed=self.parsed, where=self.where)
        template.params = template.parameter_values(params)
        return template

    def bind(self, **names: Any) -> "Template":
        """This scope with loop variables bound."""
        return Template(self.path, self.parsed, self.params, {**self.locals, **names}, self.where)

    # -- parameters -------------------------------------------------------------------------------

    def parameter_values(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.parsed["parameters"]
        unknown = set(given) - set(declared)
        if unknown:
            raise BicepError(f"{self.where} has no parameter {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = given[name]
            elif "default" in spec:
                values[name] = Lazy(spec["default"], self)
            else:
                raise BicepError(f"{self.where}: required parameter {name} is not given")
        return values

    def param(self, name: str) -> Any:
        value = self.params[name]
        if isinstance(value, Lazy):
            value = value.value()
            self._check_param(name, value)
            self.params[name] = value
        return value

    def _check_param(self, name: str, value: Any) -> None:
        spec = self.parsed["parameters"][name]
        if isinstance(value, (_Opaque, Reference)):
            return
        kinds = {"string": str, "int": int, "bool": bool, "array": list, "object": dict}
        kind = kinds.get(spec["type"])
        if kind is None:
            raise Unsupported(f"{self.where}: parameter type {spec['type']}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BicepError(f"{self.where}: parameter {name} is {spec['type']}, given {value!r}")
        d = self.decorators(name)
        if "allowed" in d and value not in d["allowed"]:
            raise BicepError(f"{self.where}: parameter {name}={value!r} is not one of {d['allowed']}")
        if "min_length" in d and len(value) < int(d["min_length"]):
            raise BicepError(f"{self.where}: parameter {name} is shorter than {d['min_length']}")
        if "max_length" in d and len(value) > int(d["max_length"]):
            raise BicepError(f"{self.where}: parameter {name} is longer than {d['max_length']}")
        if "min_value" in d and value < int(d["min_value"]):
            raise BicepError(f"{self.where}: parameter {name}={value} is below {d['min_value']}")
        if "max_value" in d and value > int(d["max_value"]):
            raise BicepError(f"{self.where}: parameter {name}={value} is above {d['max_value']}")

    def decorators(self, param: str) -> dict[str, Any]:
        return {d["type"]: d.get("argument") for d in self.parsed["parameters"][param]["decorators"]}

    # -- resources --------------------------------------------------------------------------------

    def resource(self, symbol: str) -> dict[str, Any]:
        """The resource's body (name, properties, ...) as pycep parsed it, whatever its condition or loop."""
        return _unwrap(self.parsed["resources"][symbol]["config"])

    def resource_type(self, symbol: str) -> str:
        return self.parsed["resources"][symbol]["type"]

    def deployed(self, symbol: str) -> bool:
        config = self.parsed["resources"][symbol]["config"]
        if "loop_type" in config:
            raise Unsupported(f"{symbol} is a loop: use instances()")
        return bool(self.eval(config["condition"])) if "condition" in config else True

    def symbols_of_type(self, resource_type: str) -> list[str]:
        return [s for s, r in self.parsed["resources"].items() if r["type"] == resource_type]

    def instances(self, symbol: str, kind: str = "resources") -> list[tuple["Template", dict[str, Any]]]:
        """Each deployed instance of a resource or module: (the scope its body is evaluated in, the body)."""
        config = self.parsed[kind][symbol]["config"]
        if "loop_type" in config:
            return [(scope, config["config"]) for scope in self._iterations(config)]
        if "condition" in config:
            return [(self, config["config"])] if self._truth(config["condition"]) else []
        return [(self, config)]

    def modules(self, symbol: str) -> list["Template"]:
        """The deployed instances of a local module, each the module's file evaluated with its params."""
        spec = self.parsed["modules"][symbol]
        if spec["type"] != "local":
            raise Unsupported(f"module {symbol}: {spec['type']} modules")
        path = self.path.parent / spec["detail"]["path"]
        out = []
        for i, (scope, body) in enumerate(self.instances(symbol, "modules")):
            where = f"{self.where}/{symbol}" + (f"[{i}]" if "loop_type" in self.parsed["modules"][symbol]["config"] else "")
            if "name" not in body:
                raise BicepError(f"{where}: a module needs a name")
            child = Template(path=path, parsed=parse(path), where=where)
            child.params = child.parameter_values({k: Lazy(v, scope) for k, v in _key_map(body.get("params", {})).items()})
            out.append(child)
        return out

    def module(self, symbol: str) -> "Template":
        (only,) = self.modules(symbol)
        return only

    def deployment(self) -> list["Deployed"]:
        """Every resource this template deploys, modules followed and loops expanded, in file order."""
        out = []
        for symbol, spec in self.parsed["resources"].items():
            if spec.get("existing"):
                continue
            looped = "loop_type" in spec["config"]
            for i, (scope, body) in enumerate(self.instances(symbol)):
                out.append(Deployed(f"{self.where}:{symbol}" + (f"[{i}]" if looped else ""), spec["type"], spec["api_version"], scope, body))
        for symbol in self.parsed["modules"]:
            for child in self.modules(symbol):
                out.extend(child.deployment())
        return out

    def output(self, name: str) -> Any:
        if name not in self.parsed["outputs"]:
            raise BicepError(f"{self.where} has no output {name}")
        return self.eval(self.parsed["outputs"][name]["value"])

    def outputs(self) -> dict[str, Any]:
        return {name: self.output(name) for name in self.parsed["outputs"]}

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
            if set(node) == LOOP_KEYS and isinstance(node["loop_type"], dict):
                return [scope.eval(node["config"]) for scope in self._iterations(node)]
            return {_key(k): self.eval(v) for k, v in node.items()}
        raise Unsupported(f"node {node!r}")

    def _truth(self, node: Any) -> bool:
        value = self.eval(node)
        if not isinstance(value, bool):
            raise BicepError(f"{self.where}: condition {node!r} is {value!r}, not a bool")
        return value

    def _iterations(self, loop: dict[str, Any]) -> Iterator["Template"]:
        kind, detail = loop["loop_type"]["type"], loop["loop_type"]["detail"]
        if kind in ("array", "array_index"):
            items = self.eval(detail["array_name"])
            if not isinstance(items, list):
                raise BicepError(f"{self.where}: a for loop over {items!r}, which is not an array")
            pairs = list(enumerate(items))
        elif kind == "range":
            start, count = self.eval(detail["start_index"]), self.eval(detail["count"])
            if not isinstance(start, int) or not isinstance(count, int) or count < 0:
                raise BicepError(f"{self.where}: range({start!r}, {count!r})")
            pairs = list(enumerate(range(start, start + count)))
        else:
            raise Unsupported(f"loop over {kind}")
        if len(pairs) > 800:
            raise BicepError(f"{self.where}: a loop has {len(pairs)} iterations; Azure allows 800")
        for index, item in pairs:
            names: dict[str, Any] = {}
            if kind == "range" and detail.get("item_name") is None:
                names[detail["index_name"]] = item
            else:
                names[detail["item_name"]] = item
                if detail.get("index_name"):
                    names[detail["index_name"]] = index
            scope = self.bind(**names)
            if loop.get("condition") is None or scope._truth(loop["condition"]):
                yield scope

    def _name(self, text: str) -> Any:
        if text in self.locals:
            return self.locals[text]
        if text in self.params:
            return self.param(text)
        if text in self.parsed["variables"]:
            return self.eval(self.parsed["variables"][text]["value"])
        raise KeyError(text)

    def _string(self, text: str) -> Any:
        if IDENTIFIER.match(text):
            try:
                return self._name(text)
            except KeyError:
                return text  # a literal that looks like a name ('LogAlert', 'device', ...)

        def interpolate(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            value = self._chain(inner)
            if isinstance(value, _Opaque):
                raise Unsupported(f"interpolation of {value}")
            if isinstance(value, Reference):
                return f"<{value.path}>"
            if isinstance(value, (dict, list)):
                raise BicepError(f"{self.where}: interpolation of a {type(value).__name__} ({inner})")
            return str(value).lower() if isinstance(value, bool) else str(value)

        return INTERPOLATION.sub(interpolate, text)

    def _chain(self, inner: str) -> Any:
        """An interpolated accessor chain (pycep leaves interpolations as text)."""
        if IDENTIFIER.match(inner):
            if inner in self.parsed["resources"] or inner in self.parsed["modules"]:
                raise BicepError(f"{self.where}: interpolation of the resource {inner}")
            try:
                return self._name(inner)
            except KeyError:
                raise BicepError(f"{self.where}: ${{{inner}}} names nothing") from None
        if not CHAIN.match(inner):
            raise Unsupported(f"interpolation ${{{inner}}}")
        parts = [(m.group(1), bool(m.group(2)), m.group(3)) for m in CHAIN_PART.finditer(inner)]
        (head, called, _), rest = parts[0], parts[1:]
        if called:
            value = self._function({"type": {"environment": "environment", "resourceGroup": "resource_group"}.get(head, head), "parameters": {}})
        elif head in self.parsed["resources"] or head in self.parsed["modules"]:
            value = None
        else:
            value = self._name(head)
        path = head + ("()" if called else "")
        for name, call, index in rest:
            step = f"[{index}]" if index is not None else f".{name}" + ("()" if call else "")
            if value is None:  # a resource or module symbol: resolve like a property access
                value = self._symbol_access(head, [p[0] if p[2] is None else int(p[2]) for p in rest], rest)
                break
            value = _walk(value, [int(index)] if index is not None else [name], f"{self.where}: {path}{step}")
            path += step
        return value

    def _symbol_access(self, symbol: str, names: list[Any], raw: list[tuple[str, bool, str | None]]) -> Any:
        if symbol in self.parsed["modules"]:
            return self._module_access(self.module(symbol), names)
        return self._resource_access(symbol, None, names)

    def _resource_access(self, symbol: str, index: Any, names: list[Any]) -> Any:
        label = symbol if index is None else f"{symbol}[{index}]"
        if names == ["name"]:
            instances = self.instances(symbol)
            if index is not None:
                if not 0 <= index < len(instances):
                    raise BicepError(f"{self.where}: {label} does not exist ({len(instances)} deployed)")
                scope, body = instances[index]
            elif "loop_type" in self.parsed["resources"][symbol]["config"]:
                raise BicepError(f"{self.where}: {symbol} is a loop; index it")
            else:
                scope, body = self, self.resource(symbol)
            return scope.eval(body["name"])
        return Reference(label + "".join(f"[{n}]" if isinstance(n, int) else f".{n}" for n in names))

    def _module_access(self, child: "Template", names: list[Any]) -> Any:
        if not names or names[0] != "outputs" or len(names) < 2:
            if names == ["name"]:
                raise Unsupported("a module's name")
            raise BicepError(f"{child.where}: only a module's outputs can be read, not {names}")
        return _walk(child.output(names[1]), names[2:], f"{child.where}.outputs.{names[1]}")

    def _function(self, fn: dict[str, Any]) -> Any:
        kind, args = fn["type"], fn["parameters"]
        if kind == "load_text_content":
            return (self.path.parent / args["file_path"]).read_text(encoding="utf-8")
        if kind == "replace":
            return str(self.eval(args["original_string"])).replace(
                str(self.eval(args["old_string"])), str(self.eval(args["new_string"]))
            )
        if kind == "string":
            value = self.eval(args["value_to_convert"])
            if isinstance(value, (dict, list)):
                return json.dumps(value, default=repr)
            return str(value)
        if kind == "take":
            return self.eval(args["original_value"])[: self.eval(args["number_to_take"])]
        if kind in ("max", "min"):
            values = [self.eval(v) for v in args.values()]
            return max(values) if kind == "max" else min(values)
        if kind == "unique_string":
            return "u" * 13  # uniqueString() is always 13 characters; its value only Azure computes
        if kind == "guid":
            parts = [self.eval(v) for v in args.values() if v is not None]
            return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(repr(p) for p in parts)))
        if kind == "to_lower":
            value = self.eval(args["string_to_change"])
            if isinstance(value, Reference):
                return Reference(value.path, lower=True)
            if isinstance(value, _Opaque):
                raise Unsupported(f"toLower of {value}")
            return str(value).lower()
        if kind == "empty":
            value = self.eval(args["item_to_test"])
            return value is None or len(value) == 0
        if kind == "length":
            return len(self.eval(args["arg_1"]))
        if kind == "concat":
            values = [self.eval(v) for v in args.values()]
            if all(isinstance(v, list) for v in values):
                return [item for v in values for item in v]
            return "".join(str(v) for v in values)
        if kind == "union":
            values = [self.eval(v) for k, v in args.items() if k.startswith("arg_")]
            if all(isinstance(v, dict) for v in values):
                out: dict[str, Any] = {}
                for v in values:
                    out.update(v)
                return out
            raise Unsupported("union of arrays")
        if kind == "contains":
            return self.eval(args["item_to_find"]) in self.eval(args["container"])
        if kind == "filter":
            items = self.eval(args["input_array"])
            if not isinstance(items, list):
                raise BicepError(f"{self.where}: filter() over {items!r}, which is not an array")
            out = []
            for item in items:
                keep = self.bind(**{args["input_element"]: item})._truth(args["expression"])
                if keep:
                    out.append(item)
            return out
        if kind == "resource_group":
            if args.get("resource_group_name") is not None:
                raise Unsupported("resourceGroup(name)")
            group = {"id": _Opaque("resourceGroup().id"), "location": _Opaque("resourceGroup().location"), "name": _Opaque("resourceGroup().name")}
            return group[fn["property_name"]] if fn.get("property_name") else group
        if kind == "environment":
            env = {"suffixes": {"storage": "core.windows.net"}, "name": "AzureCloud"}
            return env[fn["property_name"]] if fn.get("property_name") else env
        if kind == "subscription_resource_id":
            names = [self.eval(args[k]) for k in ("resource_name_1", "resource_name_2") if args.get(k) is not None]
            return f"/subscriptions/<subscription>/providers/{self.eval(args['resource_type'])}/" + "/".join(str(n) for n in names)
        raise Unsupported(f"function {kind}")

    def _operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            return self._access(op)
        if kind == "function_accessor":
            base = operands["operand_1"]
            if isinstance(base, str) and base in self.parsed["resources"]:
                return Reference(f"{base}.{operands['func_name']}()")
            raise Unsupported(f"{operands['func_name']}() on {base!r}")
        if kind == "index_accessor":
            base = operands["operand_1"]
            if isinstance(base, str) and (base in self.parsed["resources"] or base in self.parsed["modules"]):
                raise BicepError(f"{self.where}: {base}[...] without a property")
            value, index = self.eval(base), self.eval(operands["operand_2"])
            if isinstance(value, Reference):
                return Reference(f"{value.path}[{index}]")
            return _walk(value, [index], f"{self.where}: index")
        if kind == "conditional":
            if operands["condition"] is None or isinstance(operands["condition"], (bool, int)):
                # pycep reads `a == b ? x : y` as `a == (b ? x : y)`: parenthesize or use a function.
                raise Unsupported(f"{self.where}: a conditional on a literal (mis-parsed precedence?)")
            return self.eval(operands["true_value"] if self._truth(operands["condition"]) else operands["false_value"])
        if kind == "and":
            return self._truth(operands["operand_1"]) and self._truth(operands["operand_2"])
        if kind == "or":
            return self._truth(operands["operand_1"]) or self._truth(operands["operand_2"])
        if kind == "not":
            return not self._truth(operands["bool_value"])
        binary = {
            "add": lambda a, b: a + b,
            "substract": lambda a, b: a - b,
            "multiply": lambda a, b: a * b,
            "greater_than": lambda a, b: a > b,
            "greater_than_or_equals": lambda a, b: a >= b,
            "less_than": lambda a, b: a < b,
            "less_than_or_equals": lambda a, b: a <= b,
            "equals": lambda a, b: a == b,
            "not_equals": lambda a, b: a != b,
        }
        if kind in binary:
            a, b = self.eval(operands["operand_1"]), self.eval(operands["operand_2"])
            if kind in ("add", "substract", "multiply", "greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals") and not (
                isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool)
            ):
                raise BicepError(f"{self.where}: {kind} of {a!r} and {b!r} (ints only)")
            return binary[kind](a, b)
        raise Unsupported(f"operator {kind}")

    def _access(self, op: dict[str, Any]) -> Any:
        """`base.a.b`: a resource's property (a Reference, or its name), a module's output, or a value's."""
        base, names = _flatten(op)
        if isinstance(base, str) and base in self.parsed["resources"] and base not in self.locals:
            return self._resource_access(base, None, names)
        if isinstance(base, str) and base in self.parsed["modules"] and base not in self.locals:
            return self._module_access(self.module(base), names)
        if isinstance(base, dict) and base.get("operator", {}).get("type") == "index_accessor":
            inner = base["operator"]["operands"]
            symbol = inner["operand_1"]
            if isinstance(symbol, str) and symbol in self.parsed["resources"]:
                return self._resource_access(symbol, self.eval(inner["operand_2"]), names)
            if isinstance(symbol, str) and symbol in self.parsed["modules"]:
                children, index = self.modules(symbol), self.eval(inner["operand_2"])
                if not isinstance(index, int) or not 0 <= index < len(children):
                    raise BicepError(f"{self.where}: {symbol}[{index!r}] does not exist ({len(children)} deployed)")
                return self._module_access(children[index], names)
        value = self.eval(base)
        if isinstance(value, Reference):
            return Reference(value.path + "".join(f".{n}" for n in names))
        return _walk(value, names, f"{self.where}: {base!r}.{'.'.join(map(str, names))}")


@dataclass
class Deployed:
    """One resource a deployment creates: where it is declared, its type, and its evaluated body."""

    where: str
    type: str
    api_version: str
    scope: Template
    body: dict[str, Any]

    def value(self) -> dict[str, Any]:
        """The body as Resource Manager sends it: evaluated, with null properties left out."""
        return _drop_nulls(self.scope.eval(self.body))

    def get(self, *path: str) -> Any:
        node: Any = self.body
        for name in path:
            node = node[name]
        return _drop_nulls(self.scope.eval(node))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _unwrap(config: dict[str, Any]) -> dict[str, Any]:
    return config["config"] if ("condition" in config or "loop_type" in config) else config


def _key_map(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise Unsupported(f"module params {params!r}")
    return {_key(k): v for k, v in params.items()}


def _flatten(op: dict[str, Any]) -> tuple[Any, list[Any]]:
    """`a.b.c` as pycep nests it (a . (b . c)) -> (a, [b, c]); index steps become ints."""
    operands = op["operands"]
    return operands["operand_1"], _path_parts(operands["operand_2"])


def _path_parts(node: Any) -> list[Any]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict) and "operator" in node:
        inner = node["operator"]
        if inner["type"] == "property_accessor":
            return _path_parts(inner["operands"]["operand_1"]) + _path_parts(inner["operands"]["operand_2"])
        if inner["type"] == "index_accessor" and isinstance(inner["operands"]["operand_2"], int):
            return _path_parts(inner["operands"]["operand_1"]) + [inner["operands"]["operand_2"]]
    raise Unsupported(f"property path {node!r}")


def _walk(value: Any, names: list[Any], what: str) -> Any:
    for name in names:
        if isinstance(value, dict):
            if name not in value:
                raise BicepError(f"{what}: the object has no property {name!r} (it has {sorted(value)})")
            value = value[name]
        elif isinstance(value, list) and isinstance(name, int):
            if not 0 <= name < len(value):
                raise BicepError(f"{what}: index {name} is out of range ({len(value)} items)")
            value = value[name]
        elif isinstance(value, Reference):
            value = Reference(f"{value.path}.{name}")
        else:
            raise BicepError(f"{what}: {value!r} has no property {name!r}")
    return value


class _Opaque:
    """A value only Azure knows at deployment time (resourceGroup().location, ...)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class Reference:
    """A resource property only known once deployed (`appInsights.id`, ...), by its path in the file
    that declares the resource; `lower` when the template lower-cases it (`toLower(appInsights.id)`)."""

    def __init__(self, path: str, lower: bool = False) -> None:
        self.path = path
        self.lower = lower

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and other.path == self.path and other.lower == self.lower

    def __hash__(self) -> int:
        return hash((self.path, self.lower))

    def __repr__(self) -> str:
        return f"Reference({self.path!r}{', lower=True' if self.lower else ''})"


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
