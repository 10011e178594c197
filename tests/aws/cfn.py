"""CloudFormation templates read the way CloudFormation reads them, for the parts our template uses.

- YAML short forms (``!Ref``, ``!Sub``, ``!GetAtt`` ...) become their long forms.
- ``Fn::ForEach`` (AWS::LanguageExtensions) is expanded as the CloudFormation template reference
  documents it (docs/platform.md §12): for each value of the collection (a list, or a ``Ref`` to a
  CommaDelimitedList parameter), ``${Identifier}`` in the output key and value is replaced by the
  value, ``&{Identifier}`` by the value without its non-alphanumeric characters, and a ``Ref`` to the
  identifier by the value; the loop's own key does not appear in the result.
- Parameters are resolved with the values given (or their defaults), after checking the
  constraints CloudFormation checks (AllowedValues, AllowedPattern, Min/MaxLength, Min/MaxValue).
- ``Ref`` and ``Fn::Sub`` are resolved against parameters and pseudo parameters; a ``Ref`` to a
  resource becomes ``"<ref:Name>"`` and ``${Res.Attr}`` ``"<Res.Attr>"`` (their physical values
  exist only in AWS).
- ``Conditions`` (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``) are evaluated; a resource
  whose ``Condition`` is false is not created, ``Fn::If`` picks its branch, and a value that is
  ``Ref: AWS::NoValue`` is left out.
Anything else raises ``Unsupported``: the simulation never guesses at a form it does not know.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml


class Unsupported(Exception):
    """A template form this reader does not implement."""


class TemplateError(Exception):
    """Something CloudFormation itself would refuse."""


class _Loader(yaml.SafeLoader):
    pass


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _short_form)


def load(path: Path | str) -> dict[str, Any]:
    return load_text(Path(path).read_text(encoding="utf-8"))


def load_text(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


_FOREACH = "Fn::ForEach::"
_ALNUM = re.compile(r"[^A-Za-z0-9]")


def expand_foreach(section: dict[str, Any], collections: dict[str, list[str]]) -> dict[str, Any]:
    """``section`` (Resources, Outputs or Conditions) with every ``Fn::ForEach::*`` key expanded.

    ``collections`` gives the value of each list parameter a collection may ``Ref``.
    """
    out: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith(_FOREACH):
            _put(out, key, value)
            continue
        if not isinstance(value, list) or len(value) != 3:
            raise TemplateError(f"{key}: Fn::ForEach takes [identifier, collection, fragment]")
        identifier, collection, fragment = value
        if not isinstance(identifier, str) or not identifier:
            raise TemplateError(f"{key}: the identifier must be a string")
        items = _collection(key, collection, collections)
        if not isinstance(fragment, dict) or not fragment:
            raise TemplateError(f"{key}: the fragment must be a map of output keys")
        for item in items:
            replaced = {}
            for out_key, out_value in fragment.items():
                if f"${{{identifier}}}" not in out_key and f"&{{{identifier}}}" not in out_key:
                    raise TemplateError(f"{key}: output key {out_key} uses neither ${{{identifier}}} nor &{{{identifier}}}")
                replaced[_substitute(out_key, identifier, item)] = _replace(out_value, identifier, item)
            # A nested loop inside the fragment is expanded with the same rules.
            for new_key, new_value in expand_foreach(replaced, collections).items():
                _put(out, new_key, new_value)
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if key in out:
        raise TemplateError(f"duplicate logical id {key} after Fn::ForEach expansion")
    out[key] = value


def _collection(key: str, collection: Any, collections: dict[str, list[str]]) -> list[str]:
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        if name not in collections:
            raise Unsupported(f"{key}: collection Ref {name} is not a list parameter given here")
        items = collections[name]
    elif isinstance(collection, list):
        items = collection
    else:
        raise Unsupported(f"{key}: collection {collection!r}")
    if not all(isinstance(i, str) for i in items):
        raise Unsupported(f"{key}: non-string collection items")
    return list(items)


def _substitute(text: str, identifier: str, item: str) -> str:
    return text.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", _ALNUM.sub("", item))


def _replace(value: Any, identifier: str, item: str) -> Any:
    if isinstance(value, str):
        return _substitute(value, identifier, item)
    if isinstance(value, list):
        return [_replace(v, identifier, item) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] == identifier:
            return item
        return {_substitute(k, identifier, item): _replace(v, identifier, item) for k, v in value.items()}
    return copy.deepcopy(value)


def parameter_values(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """Every parameter's value: given or default, checked as CloudFormation checks it. A
    CommaDelimitedList becomes a list (split on commas, as given)."""
    params = template.get("Parameters", {})
    unknown = set(given) - set(params)
    if unknown:
        raise TemplateError(f"unknown parameters: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in params.items():
        if name in given:
            raw = given[name]
        elif "Default" in spec:
            raw = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} needs a value")
        kind = spec.get("Type", "String")
        if kind == "CommaDelimitedList":
            values[name] = raw.split(",")
            continue
        if kind not in ("String", "Number"):
            raise Unsupported(f"parameter type {kind}")
        if "AllowedValues" in spec and raw not in [str(v) for v in spec["AllowedValues"]]:
            raise TemplateError(f"{name}={raw!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], raw):
            raise TemplateError(f"{name}={raw!r} does not match {spec['AllowedPattern']}")
        if "MinLength" in spec and len(raw) < int(spec["MinLength"]):
            raise TemplateError(f"{name} is shorter than {spec['MinLength']}")
        if "MaxLength" in spec and len(raw) > int(spec["MaxLength"]):
            raise TemplateError(f"{name} is longer than {spec['MaxLength']}")
        if kind == "Number":
            try:
                number = float(raw)
            except ValueError:
                raise TemplateError(f"{name}={raw!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"{name}={raw} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"{name}={raw} is above {spec['MaxValue']}")
        values[name] = raw
    return values


PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "ispmon",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


NO_VALUE = object()  # Ref AWS::NoValue: the property or list item is left out


def conditions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, bool]:
    """Every condition of the template (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
    raw = template.get("Conditions", {})
    done: dict[str, bool] = {}

    def value(c: Any, seen: tuple[str, ...]) -> bool:
        if isinstance(c, dict) and set(c) == {"Condition"}:
            return named(c["Condition"], seen)
        if isinstance(c, dict) and len(c) == 1:
            (fn, args), = c.items()
            if fn == "Fn::Equals":
                a, b = (resolve(x, params, set()) for x in args)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not value(args[0], seen)
            if fn == "Fn::And":
                return all(value(x, seen) for x in args)
            if fn == "Fn::Or":
                return any(value(x, seen) for x in args)
        raise Unsupported(f"condition {c!r}")

    def named(name: str, seen: tuple[str, ...]) -> bool:
        if name in seen:
            raise TemplateError(f"condition {name} refers to itself")
        if name not in raw:
            raise TemplateError(f"unknown condition {name}")
        if name not in done:
            done[name] = value(raw[name], seen + (name,))
        return done[name]

    return {name: named(name, ()) for name in raw}


def resolve(value: Any, params: dict[str, Any], resources: set[str], conds: dict[str, bool] | None = None) -> Any:
    """``value`` with Ref, Fn::Sub and Fn::If resolved (see the module's doc); a property or list
    item that is Ref AWS::NoValue is left out."""
    if isinstance(value, list):
        items = [resolve(v, params, resources, conds) for v in value]
        return [v for v in items if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, yes, no = value["Fn::If"]
        if conds is None or name not in conds:
            raise TemplateError(f"Fn::If on unknown condition {name}")
        return resolve(yes if conds[name] else no, params, resources, conds)
    if set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in params:
            return params[name]
        if name in PSEUDO:
            return PSEUDO[name]
        if name in resources:
            return f"<ref:{name}>"
        raise TemplateError(f"Ref to unknown {name}")
    if set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        if not isinstance(text, str):
            raise Unsupported("Fn::Sub with a variable map")

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in params:
                if isinstance(params[name], list):
                    raise TemplateError(f"Fn::Sub of list parameter {name}")
                return str(params[name])
            if name in PSEUDO:
                return PSEUDO[name]
            base = name.split(".", 1)[0]
            if base in resources:
                return f"<{name}>"
            raise TemplateError(f"Fn::Sub of unknown {name}")

        return _SUB_VAR.sub(one, text)
    if set(value) == {"Fn::GetAtt"}:
        res, attr = value["Fn::GetAtt"]
        if res not in resources:
            raise TemplateError(f"Fn::GetAtt of unknown {res}")
        return f"<{res}.{attr}>"
    if any(k.startswith("Fn::") for k in value):
        raise Unsupported(f"intrinsic {sorted(value)}")
    items = {k: resolve(v, params, resources, conds) for k, v in value.items()}
    return {k: v for k, v in items.items() if v is not NO_VALUE}


def expanded_resources(template: dict[str, Any], given: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The template's resources as CloudFormation would create them with these parameters."""
    if "AWS::LanguageExtensions" not in _transforms(template) and any(
        k.startswith(_FOREACH) for k in template.get("Resources", {})
    ):
        raise TemplateError("Fn::ForEach needs Transform: AWS::LanguageExtensions")
    params = parameter_values(template, given)
    lists = {k: v for k, v in params.items() if isinstance(v, list)}
    resources = expand_foreach(template["Resources"], lists)
    for name in resources:
        if not re.fullmatch(r"[A-Za-z0-9]+", name):
            raise TemplateError(f"logical id {name!r} is not alphanumeric")
    conds = conditions(template, params)
    for name, res in resources.items():
        if "Condition" in res and res["Condition"] not in conds:
            raise TemplateError(f"{name}: unknown condition {res['Condition']}")
    resources = {name: res for name, res in resources.items() if conds.get(res.get("Condition"), True)}
    names = set(resources)
    return {name: resolve(res, params, names, conds) for name, res in resources.items()}


def _transforms(template: dict[str, Any]) -> list[str]:
    t = template.get("Transform", [])
    return t if isinstance(t, list) else [t]
