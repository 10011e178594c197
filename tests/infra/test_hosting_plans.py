"""The template for both hosting plans (hostingPlan = consumption | flex), evaluated through its modules:
the right resources and settings per plan, nothing Flex does not take on the Flex site, the identity and
its storage roles, outputs of the same shape; and the evaluator failing where Bicep or Resource Manager
would (a wrong module parameter, a loop over a non-array, a missing property), so these tests can fail.
Facts: docs/platform.md §10."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from bicep_eval import BicepError, Reference, Template, Unsupported, parse
from conftest import MAIN_BICEP, REPO, deployed_of_type, deployed_rules, template

SITE = "Microsoft.Web/sites"
PLAN = "Microsoft.Web/serverfarms"
ROLE = "Microsoft.Authorization/roleAssignments"
STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"

# What the Flex site must not carry (docs/platform.md §10): Flex takes the runtime, package and scale
# from functionAppConfig, and the host's storage by identity.
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_RUN_FROM_ZIP", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTOVERVNET", "WEBSITE_NODE_DEFAULT_VERSION", "AzureWebJobsStorage",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
}
STORAGE_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
}


def of_type(t: Template, resource_type: str) -> list[dict]:
    return [d.value() for d in deployed_of_type(t, resource_type)]


def one(t: Template, resource_type: str) -> dict:
    (found,) = of_type(t, resource_type)
    return found


def settings(site: dict) -> dict:
    names = [s["name"] for s in site["properties"]["siteConfig"]["appSettings"]]
    assert len(names) == len(set(names)), f"an app setting is written twice: {names}"
    return {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}


@pytest.fixture(scope="module")
def flex() -> Template:
    return template(hostingPlan="flex")


def test_the_default_is_linux_consumption(main_template):
    d = main_template.decorators("hostingPlan")
    assert set(d["allowed"]) == {"consumption", "flex"}
    assert main_template.param("hostingPlan") == "consumption"
    assert one(main_template, PLAN)["sku"] == {"name": "Y1", "tier": "Dynamic"}
    assert "functionAppConfig" not in one(main_template, SITE)["properties"]
    assert of_type(main_template, ROLE) == [] and of_type(main_template, CONTAINER) == []


def test_each_plan_deploys_one_app_with_the_same_rest(main_template, flex):
    """One hosting module per plan; monitoring, alerts and workbook are the same resources."""
    def kinds(t):
        return sorted(d.where.split(":")[0] + ":" + d.type for d in t.deployment())

    consumption, flexible = kinds(main_template), kinds(flex)
    assert [k for k in consumption if "hosting" not in k] == [k for k in flexible if "hosting" not in k]
    assert all("/hostingConsumption:" in k for k in consumption if "hosting" in k)
    assert all("/hostingFlex:" in k for k in flexible if "hosting" in k)
    assert len(of_type(flex, SITE)) == len(of_type(flex, PLAN)) == len(of_type(flex, STORAGE)) == 1
    assert set(deployed_rules(flex)) == set(deployed_rules(main_template))


def test_flex_plan_is_fc1_linux(flex):
    plan = one(flex, PLAN)
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"] == {"reserved": True} and plan["kind"] == "functionapp"


def test_flex_site_function_app_config(flex):
    site = one(flex, SITE)
    assert site["kind"] == "functionapp,linux" and site["identity"] == {"type": "SystemAssigned"}
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "custom", "version": "1.0"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    (container,) = of_type(flex, CONTAINER)
    assert storage["value"] == f"<storage.properties.primaryEndpoints.blob>{container['name']}"
    assert container["properties"] == {"publicAccess": "None"}
    scale = config["scaleAndConcurrency"]
    assert scale == {"instanceMemoryMB": 512, "maximumInstanceCount": 40, "alwaysReady": []}
    assert site["properties"]["httpsOnly"] is True and site["properties"]["serverFarmId"] == Reference("plan.id")


def test_flex_scale_parameters():
    t = template(hostingPlan="flex", flexInstanceMemoryMB=2048, flexMaximumInstanceCount=100, flexAlwaysReadyInstances=2)
    scale = one(t, SITE)["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {"instanceMemoryMB": 2048, "maximumInstanceCount": 100, "alwaysReady": [{"name": "http", "instanceCount": 2}]}
    d = template().decorators
    assert sorted(d("flexInstanceMemoryMB")["allowed"]) == [512, 2048, 4096]
    assert template().param("flexInstanceMemoryMB") == 512  # the smallest: every execution bills >= 1 s of it
    assert template().param("flexAlwaysReadyInstances") == 0


def test_nothing_flex_does_not_take_is_on_the_flex_site(flex):
    site = one(flex, SITE)
    names = set(settings(site))
    assert names & FLEX_FORBIDDEN_SETTINGS == set()
    assert not any(n.startswith("WEBSITE_CONTENT") for n in names)
    assert "linuxFxVersion" not in site["properties"]["siteConfig"]
    # Not even when deploy.sh passes a package URL (Flex keeps its package in the container).
    site = one(template(hostingPlan="flex", currentPackageUrl="https://st.blob.core.windows.net/c/p.zip?sig=x"), SITE)
    assert "WEBSITE_RUN_FROM_PACKAGE" not in settings(site)


def test_the_forbidden_list_would_catch_the_consumption_site(main_template):
    """The check above is not vacuous: the Consumption site carries five of those settings."""
    assert set(settings(one(main_template, SITE))) & FLEX_FORBIDDEN_SETTINGS == {
        "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE", "AzureWebJobsStorage"}


def test_flex_host_storage_by_identity_without_keys(flex):
    values = settings(one(flex, SITE))
    account = one(flex, STORAGE)
    assert values["AzureWebJobsStorage__credential"] == "managedidentity"
    for service in ("blob", "queue", "table"):
        assert values[f"AzureWebJobsStorage__{service}ServiceUri"] == f"https://{account['name']}.{service}.core.windows.net"
    assert values["APPLICATIONINSIGHTS_CONNECTION_STRING"] == Reference("appInsights.properties.ConnectionString")
    assert not any("AccountKey" in str(v) or "listKeys" in str(v) for v in values.values())
    assert account["properties"]["allowSharedKeyAccess"] is False
    assert account["properties"]["allowBlobPublicAccess"] is False


def test_flex_identity_has_its_storage_roles(flex):
    roles = of_type(flex, ROLE)
    assert len(roles) == 3
    assert {r["properties"]["roleDefinitionId"].rsplit("/", 1)[1] for r in roles} == STORAGE_ROLES
    for r in roles:
        assert r["properties"]["roleDefinitionId"].startswith("/subscriptions/<subscription>/providers/Microsoft.Authorization/roleDefinitions/")
        assert r["properties"]["principalId"] == Reference("app.identity.principalId")
        assert r["properties"]["principalType"] == "ServicePrincipal"
        assert r["scope"] == "storage"  # the hosting module's storage account
    assert len({r["name"] for r in roles}) == 3  # guid(storage, app, role): one name per role


def test_outputs_have_the_same_shape_on_both_plans(main_template, flex):
    a, b = main_template.outputs(), flex.outputs()
    assert set(a) == set(b) and a.keys() == b.keys()
    for name in a:
        assert type(a[name]) is type(b[name]), name
    assert a["hostingPlan"] == "consumption" and b["hostingPlan"] == "flex"
    assert a["heartbeatUrl"] == b["heartbeatUrl"] == "https://<app.properties.defaultHostName>/api/ping"
    assert a["functionAppName"] == b["functionAppName"] and a["alertRuleNames"] == b["alertRuleNames"]
    # And the two hosting modules declare identical outputs.
    infra = REPO / "infra"
    consumption, flexible = (parse(infra / f"hosting-{p}.bicep")["outputs"] for p in ("consumption", "flex"))
    assert {k: v["type"] for k, v in consumption.items()} == {k: v["type"] for k, v in flexible.items()}
    assert consumption == flexible  # same names, types, descriptions and expressions


def test_main_bicep_says_what_deploy_sh_passes():
    """The comment above the hosting parameters tells deploy.sh what to pass for each plan."""
    text = MAIN_BICEP.read_text(encoding="utf-8")
    assert "// What deploy.sh passes (from .env): hostingPlan from HOSTING_PLAN" in text
    assert "currentPackageUrl only on Consumption, never on Flex" in text


# -- the evaluator can fail ------------------------------------------------------------------------


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return tmp_path / "main.bicep"


CHILD = """
    @description('Required. A name.')
    @minLength(3)
    param name string
    @description('Optional. A count.')
    @allowed([
      1
      2
    ])
    param count int = 1
    resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = [for i in range(0, count): {
      name: '${name}${i}'
    }]
    @description('The names.')
    output names array = [for i in range(0, count): '${name}${i}']
    """


def deploy(tmp_path: Path, main: str) -> Template:
    return Template.load(write(tmp_path, {"main.bicep": main, "infra/child.bicep": CHILD}))


def test_the_evaluator_follows_a_module_and_a_range_loop(tmp_path):
    t = deploy(tmp_path, """
        var kidNames = [
          'abc'
          'defg'
        ]
        module kids 'infra/child.bicep' = [for (n, i) in kidNames: {
          name: 'kid${i}'
          params: {
            name: n
            count: i + 1
          }
        }]
        output first array = kids[0].outputs.names
        output second array = kids[1].outputs.names
        """)
    assert [d.value()["name"] for d in t.deployment()] == ["abc0", "defg0", "defg1"]
    assert t.output("first") == ["abc0"] and t.output("second") == ["defg0", "defg1"]


@pytest.mark.parametrize("params,error", [
    ("name: 'abc'\n    colour: 'red'", "has no parameter ['colour']"),
    ("count: 2", "required parameter name is not given"),
    ("name: 'ab'", "shorter than 3"),
    ("name: 'abc'\n    count: 3", "is not one of"),
    ("name: 'abc'\n    count: 'two'", "is int, given 'two'"),
])
def test_a_wrong_module_parameter_is_caught(tmp_path, params, error):
    t = deploy(tmp_path, f"""
        module kid 'infra/child.bicep' = {{
          name: 'kid'
          params: {{
            {params}
          }}
        }}
        """)
    with pytest.raises(BicepError, match=error.replace("[", r"\[").replace("]", r"\]")):
        [d.value() for d in t.deployment()]


def test_a_missing_module_file_or_output_is_caught(tmp_path):
    with pytest.raises(BicepError, match="does not exist"):
        deploy(tmp_path, "module kid 'infra/nope.bicep' = {\n  name: 'kid'\n}\n").deployment()
    t = deploy(tmp_path, "module kid 'infra/child.bicep' = {\n  name: 'kid'\n  params: {\n    name: 'abc'\n  }\n}\noutput x array = kid.outputs.nams\n")
    with pytest.raises(BicepError, match="has no output nams"):
        t.output("x")


def test_reading_a_module_that_is_not_deployed_is_caught(tmp_path):
    t = deploy(tmp_path, "module kid 'infra/child.bicep' = if (false) {\n  name: 'kid'\n  params: {\n    name: 'abc'\n  }\n}\noutput x array = kid.outputs.names\n")
    assert t.deployment() == []
    with pytest.raises(BicepError, match="0 deployed instances"):
        t.output("x")


@pytest.mark.parametrize("main,error", [
    ("var xs = 'abc'\nvar ys = [for x in xs: x]\noutput o array = ys\n", "not an array"),
    ("var ys = [for i in range(0, 801): i]\noutput o array = ys\n", "800"),
    ("var rules = [\n  {\n    name: 'a'\n  }\n]\nvar ys = [for r in rules: r.nmae]\noutput o array = ys\n", "has no property 'nmae'"),
    ("var xs = [\n  'a'\n]\nvar ys = [for (r, i) in xs: r + i]\noutput o array = ys\n", "ints only"),
    ("var xs = [\n  'a'\n]\nvar ys = [for r in xs: if ('yes') r]\noutput o array = ys\n", "not a bool"),
])
def test_a_wrong_loop_is_caught(tmp_path, main, error):
    t = deploy(tmp_path, main)
    with pytest.raises(BicepError, match=error):
        t.output("o")


def test_a_misread_precedence_or_an_ambiguous_literal_is_refused(tmp_path):
    """pycep reads `a == b ? x : y` as `a == (b ? x : y)`; and spells a literal like a name."""
    t = deploy(tmp_path, "param p string = 'a'\noutput o int = p == 'a' ? 1 : 2\n")
    with pytest.raises((Unsupported, BicepError)):
        t.output("o")
    assert deploy(tmp_path, "param p string = 'a'\noutput o int = (p == 'a') ? 1 : 2\n").output("o") == 1
    with pytest.raises(Unsupported, match="spelled like names"):
        deploy(tmp_path, "param count int = 1\noutput o string = 'count'\n")


def test_a_wrong_rule_object_in_main_bicep_is_caught(tmp_path):
    """An alert rule object missing a field (here `dimensions`) fails the evaluation of the rules."""
    text = MAIN_BICEP.read_text(encoding="utf-8").replace("    dimensions: [\n      'device'\n    ]\n", "", 1)
    assert text != MAIN_BICEP.read_text(encoding="utf-8")
    (tmp_path / "main.bicep").write_text(text, encoding="utf-8")
    (tmp_path / "infra").symlink_to(REPO / "infra")
    (tmp_path / "queries").symlink_to(REPO / "queries")
    t = Template.load(tmp_path / "main.bicep", alertEmail="owner@example.com")
    with pytest.raises(BicepError, match="no property 'dimensions'"):
        [d.value() for d in deployed_rules(t).values()]
