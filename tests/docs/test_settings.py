"""The deploy settings as docs/deploy.md names them ("Settings: `.env`", the table from `.env`
names to main.bicep parameters): that table is exactly what deploy.sh passes, each setting is
described in .env.example, and each parameter is one main.bicep declares."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def deploy_pairs() -> set[tuple[str, str]]:
    """deploy.sh's PARAMETERS list: (.env setting, main.bicep parameter)."""
    text = (REPO / "deploy.sh").read_text(encoding="utf-8")
    body = re.search(r"^readonly PARAMETERS=\((.*?)^\)", text, re.S | re.M)
    assert body, "deploy.sh has no PARAMETERS list"
    return set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=([A-Za-z0-9]+):(?:int|bool|string)\s*$", body.group(1), re.M))


def documented_pairs() -> set[tuple[str, str]]:
    """(setting, parameter) from the table's rows; a row may pair two of each, in order."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("## Settings: `.env`", 1)[1].split("\n## ", 1)[0]
    pairs = set()
    for settings, params in re.findall(r"^\| ((?:`[A-Z][A-Z0-9_]*`(?:, )?)+)[^|]*\| ((?:`[a-z]\w*`(?:, )?)+)", section, re.M):
        names, vars_ = re.findall(r"`(\w+)`", params), re.findall(r"`(\w+)`", settings)
        assert len(names) == len(vars_), f"docs/deploy.md pairs {vars_} with {names}"
        pairs |= set(zip(vars_, names))
    return pairs


def test_the_settings_table_is_what_deploy_sh_passes():
    documented, passed = documented_pairs(), deploy_pairs()
    assert len(passed) >= 20, f"too few settings read from deploy.sh: {sorted(passed)}"
    assert documented == passed, (
        f"only in docs/deploy.md: {sorted(documented - passed)}; only in deploy.sh: {sorted(passed - documented)}")


def test_each_setting_is_in_env_example_and_each_parameter_in_main_bicep():
    env_example = (REPO / ".env.example").read_text(encoding="utf-8")
    params = set(re.findall(r"^param (\w+) ", (REPO / "main.bicep").read_text(encoding="utf-8"), re.M))
    for var, param in deploy_pairs():
        assert re.search(rf"^{var}=", env_example, re.M), f"{var} is not described in .env.example"
        assert param in params, f"main.bicep declares no parameter {param} (deploy.sh passes it from {var})"
