"""The Ansible face, statically: generated modules/roles/playbooks match the engine's tasks, the
documented options are the tasks' argument specs, the play's view of a host is the CLI's, the
collection builds, ansible-doc/ansible-lint/--syntax-check accept it, and the example inventory
(vault-encrypted secrets) plans without touching a network."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml
from ansible.template import Templar
from ansible.vars.hostvars import HostVars
from ansible_support import PLAYBOOKS, ROOT, run

from lync2fa import api
from lync2fa.ansible_bridge import COLLECTION, ENGINE_OPTIONS, PlayInventory, builtin_tasks, module_name
from lync2fa.connection import ConnectionSettings
from lync2fa.lab import control
from lync2fa.plan import params_for

TASKS = builtin_tasks()
EXAMPLE = ROOT / "inventories" / "example"
EXAMPLE_VAULT_PASS = EXAMPLE / ".vault-pass-example"
TIER_ROLES = {
    "ca": "ca",
    "templates": "cert_templates",
    "adfs": "adfs",
    "lync": "lync_server",
    "client": "client_enrollment",
}


def _generator():
    spec = importlib.util.spec_from_file_location("gen_modules", ROOT / "tools" / "gen_modules.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _doc_block(path: Path, block: str) -> dict:
    """A documentation block, read from the file as ansible-doc reads it (not imported)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == block:
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{block} missing in {path}")


def module_doc(task_name: str, block: str = "DOCUMENTATION") -> dict:
    """A module's documentation block, with the collection's engine fragment merged in when the
    module extends it (as ansible-doc merges it)."""
    doc = _doc_block(ROOT / "plugins" / "modules" / f"{module_name(task_name)}.py", block)
    if block == "DOCUMENTATION" and f"{COLLECTION}.engine" in doc.get("extends_documentation_fragment", []):
        fragment = _doc_block(ROOT / "plugins" / "doc_fragments" / "engine.py", "DOCUMENTATION")
        doc["options"] = {**doc["options"], **fragment["options"]}
    return doc


def load_yaml(path):
    return yaml.safe_load(path.read_text())


def role_calls(role: str, entry: str = "main") -> list[tuple[str, dict, dict]]:
    """(engine task, module options, the Ansible task) for every module call of a role's task file."""
    calls = []
    for item in load_yaml(ROOT / "roles" / role / "tasks" / f"{entry}.yml") or []:
        fqcn = next((k for k in item if k.startswith(COLLECTION + ".")), None)
        if fqcn is None:  # the multi-group role's membership check
            assert "ansible.builtin.assert" in item, item
            continue
        task = next(t for t in TASKS.values() if module_name(t.name) == fqcn.rsplit(".", 1)[1])
        calls.append((task.name, item[fqcn], item))
    return calls


# -- generated files ------------------------------------------------------------------------


def test_generated_files_are_what_the_registry_produces():
    gen = _generator()
    files = gen.render_all(TASKS)
    differing = sorted(
        rel for rel, text in files.items() if not (ROOT / rel).exists() or (ROOT / rel).read_text() != text
    )
    assert differing == [], f"run `.venv/bin/python tools/gen_modules.py`: {differing}"
    assert gen.stale_files(ROOT, files) == []


def test_every_engine_task_has_a_module_and_an_action_plugin():
    # host_request: the PowerShell module every action sends its requests through (not a task)
    modules = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")} - {"host_request"}
    actions = {p.stem for p in (ROOT / "plugins" / "action").glob("*.py")}
    expected = {module_name(n) for n in TASKS}
    assert len(TASKS) >= 4 and modules == expected and actions == expected
    for name in TASKS:
        text = (ROOT / "plugins" / "action" / f"{module_name(name)}.py").read_text()
        assert f'TASK = "{name}"' in text and "(EngineAction)" in text


@pytest.mark.parametrize("name", sorted(TASKS))
def test_module_options_are_the_task_argument_spec(name):
    """The two faces cannot drift: the documented options are the engine's parameter schema."""
    task = TASKS[name]
    options = module_doc(name)["options"]
    assert set(options) == {p.name for p in task.params} | set(ENGINE_OPTIONS)
    documented = {}
    for pname in task.argument_spec():
        doc = options[pname]
        assert "required" not in doc, "the inventory may give any option: none is required of the module"
        spec = {"type": doc["type"], "required": task.argument_spec()[pname]["required"]}
        for key in ("default", "choices", "elements"):
            if key in doc:
                spec[key] = doc[key]
        if task.argument_spec()[pname].get("no_log"):
            spec["no_log"] = True
        documented[pname] = spec
    assert documented == task.argument_spec()
    source = (ROOT / "plugins" / "modules" / f"{module_name(name)}.py").read_text()
    declared = ast.literal_eval(source.split("ARGUMENT_SPEC = ", 1)[1].split("\n}\n", 1)[0] + "\n}")
    for p in task.params:
        assert "no_log" not in options[p.name]  # DOCUMENTATION has no no_log key; the argument spec does
        assert bool(declared[p.name].get("no_log")) == p.secret
        assert ("Secret: never logged" in " ".join(options[p.name]["description"])) == p.secret
    for opt, spec in ENGINE_OPTIONS.items():
        assert options[opt]["type"] == spec["type"] and options[opt].get("default") == spec.get("default")
    assert module_doc(name)["module"] == module_name(name)
    # The module file declares the same options (validate-modules compares them with the docs).
    source = (ROOT / "plugins" / "modules" / f"{module_name(name)}.py").read_text()
    declared = ast.literal_eval(source.split("ARGUMENT_SPEC = ", 1)[1].split("\n}\n", 1)[0] + "\n}")
    assert set(declared) == set(options)
    for option, entry in declared.items():
        assert "required" not in entry and entry.get("default") == options[option].get("default"), option


def test_ansible_doc_shows_every_module(tmp_path):
    names = [f"{COLLECTION}.{module_name(n)}" for n in sorted(TASKS)]
    result = run("ansible-doc", "--json", "-t", "module", *names, workdir=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert sorted(docs) == sorted(names)
    for name in TASKS:
        doc = docs[f"{COLLECTION}.{module_name(name)}"]
        assert set(doc["doc"]["options"]) == {p.name for p in TASKS[name].params} | set(ENGINE_OPTIONS)
        assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
        assert doc["doc"]["attributes"]["diff_mode"]["support"] == "full"
        assert {"before", "after", "changes", "engine_task"} <= set(doc["return"])
        assert f"{COLLECTION}.{module_name(name)}:" in doc["examples"]


def _no_facts(params):
    return {}


def _no_decision(ctx):
    return None


def test_generator_covers_a_new_tier_without_changes():
    """A tier that appears later (here a made-up one) gets modules, a role and plays by itself;
    a derived value and a variable whose tasks disagree on its default get no role default."""
    from lync2fa.task import Param, Task

    gen = _generator()
    extra = {
        "hardening.audit": Task(
            name="hardening.audit",
            group="ca",
            facts=_no_facts,
            decide=_no_decision,
            after=("ca.authority",),
            description="set the CA audit filter",
            params=(Param("level", "int", default=127), Param("target", required=True), Param("key", secret=True)),
            derived={"target": lambda host: host.fqdn},
        ),
        "hardening.check": Task(
            name="hardening.check",
            group="ca",
            facts=_no_facts,
            decide=_no_decision,
            kind="verify",
            params=(Param("level", "int", default=255),),
        ),
        "hardening.undo": Task(
            name="hardening.undo", group="ca", facts=_no_facts, decide=_no_decision, kind="rollback"
        ),
    }
    files = gen.render_all({**TASKS, **extra})
    for name in extra:
        assert f"plugins/modules/hardening_{name.split('.')[1]}.py" in files
    role = yaml.safe_load(files["roles/hardening/tasks/main.yml"])
    (call,) = role
    options = call["lync2fa.twofactor.hardening_audit"]
    assert options["target"] == "{{ hardening_target | default(omit) }}"  # derived per host
    assert options["level"] == "{{ hardening_level | default(omit) }}"  # 127 here, 255 in the check
    assert options["key"] == "{{ hardening_key | default(omit) }}"
    assert yaml.safe_load(files["roles/hardening/defaults/main.yml"]) == {}
    specs = yaml.safe_load(files["roles/hardening/meta/argument_specs.yml"])["argument_specs"]
    assert specs["main"]["options"]["hardening_key"]["no_log"] is True and "rollback" in specs
    doc = yaml.safe_load(files["plugins/modules/hardening_audit.py"].split('DOCUMENTATION = r"""')[1].split('"""')[0])
    assert "'key': {'type': 'str', 'no_log': True}" in files["plugins/modules/hardening_audit.py"]
    assert "required" not in doc["options"]["target"]
    assert "hardening_target" in " ".join(doc["options"]["target"]["description"])
    deploy = yaml.safe_load(files["playbooks/deploy_2fa.yml"])
    plays = [p["roles"][0]["role"].rsplit(".", 1)[1] for p in deploy if p.get("roles")]
    # the engine's order (lync2fa.plan.order_tasks), the one the CLI runs: after its dependency
    from lync2fa import api
    from lync2fa.plan import order_tasks

    applying = {n: t for n, t in {**api.tasks(), **extra}.items() if t.kind == "apply"}
    engine_tiers = list(dict.fromkeys(t.tier for t in order_tasks(applying)))
    assert [gen.role_of(t) for t in engine_tiers] == plays
    assert plays.index("hardening") > plays.index("ca")
    assert "lync2fa.twofactor.hardening_check" in files["roles/verify/tasks/main.yml"]
    rollback = yaml.safe_load(files["playbooks/rollback_2fa.yml"])
    undone = [
        p["tasks"][0]["ansible.builtin.include_role"]["name"].rsplit(".", 1)[1]
        for p in rollback
        if p.get("tasks") and "ansible.builtin.include_role" in p["tasks"][0]
    ]
    assert "hardening" in undone  # rolled back in reverse rollout order, before what it needs
    assert [r for r in undone if r in plays] == [r for r in reversed(plays) if r in undone]
    backwards = Task(
        name="ca.needs_hardening", group="ca", facts=_no_facts, decide=_no_decision, after=("hardening.audit",)
    )
    with pytest.raises(SystemExit, match="cannot honour"):
        gen.render_all({**TASKS, **extra, backwards.name: backwards})


# -- roles and playbooks --------------------------------------------------------------------


def _tier_tasks(tier: str, kind: str) -> set[str]:
    return {n for n, t in TASKS.items() if t.tier == tier and t.kind == kind}


def _assert_dependency_order(names: list[str]) -> None:
    for i, name in enumerate(names):
        later = names[i + 1 :]
        assert not set(TASKS[name].after) & set(later), f"{name} is called before what it runs after"


@pytest.mark.parametrize("tier", sorted({t.tier for t in TASKS.values()}))
def test_tier_role_calls_its_tasks_with_cli_variable_names_and_task_defaults(tier):
    role = TIER_ROLES.get(tier, tier)
    defaults = load_yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    entries = [("main", "apply")] + ([("rollback", "rollback")] if _tier_tasks(tier, "rollback") else [])
    for entry, kind in entries:
        calls = role_calls(role, entry)
        assert {c[0] for c in calls} == _tier_tasks(tier, kind)
        _assert_dependency_order([c[0] for c in calls])
        for name, options, item in calls:
            _assert_call(TASKS[name], options, item, defaults)


def test_verify_role_runs_what_lync2fa_verify_runs():
    """Every verify task, and every apply task with verify: true (check mode, fails on drift)."""
    calls = role_calls("verify")
    assert {c[0] for c in calls} == {n for n, t in TASKS.items() if t.kind in ("apply", "verify")}
    _assert_dependency_order([c[0] for c in calls])
    defaults = load_yaml(ROOT / "roles" / "verify" / "defaults" / "main.yml") or {}
    for name, options, item in calls:
        assert options.pop("verify", False) is (TASKS[name].kind == "apply"), name
        _assert_call(TASKS[name], options, item, defaults)


def _readers(var: str):
    return [(t, p) for t in TASKS.values() for p in t.params if t.var_prefix + p.name == var]


def _assert_call(task, options, item, defaults):
    """Each option is the CLI's inventory variable; a role default is the task default, and a
    value the engine derives per host (or one variable with different defaults) is left unset."""
    # A one-group role leaves the group check to the module (it fails outside the group unless forced);
    # the multi-group verify role runs each task on its own group's hosts.
    if "when" in item:
        assert item["when"] == f"(lync2fa_{task.group}_group | default('{task.group}')) in group_names"
        assert "force_group" not in options
    else:
        assert options.pop("force_group") == "{{ lync2fa_force_group | default(false) }}"
    assert task.tier in item["tags"]
    assert set(options) == {p.name for p in task.params} | {"allow_insecure", "state_dir"}
    for p in task.params:
        var = task.var_prefix + p.name
        readers = _readers(var)
        if options[p.name] == "{{ " + var + " }}":
            assert var in defaults and defaults[var] == p.default, var
            assert not any(q.name in t.derived for t, q in readers), f"{var} is derived: no role default"
        else:
            assert options[p.name] == "{{ " + var + " | default(omit) }}", options[p.name]
            assert var not in defaults
            assert (
                p.default is None
                or any(q.name in t.derived for t, q in readers)
                or len({repr(q.argument_spec()) for _, q in readers}) > 1
            ), f"{var} could have a default"


@pytest.mark.parametrize("role", sorted({TIER_ROLES.get(t.tier, t.tier) for t in TASKS.values()} | {"verify"}))
def test_role_argument_specs_document_every_variable_with_its_default(role):
    specs = load_yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    defaults = load_yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    for entry, spec in specs.items():
        used = {
            o[len("{{ ") :].split()[0]
            for _, options, _ in role_calls(role, entry)
            for o in options.values()
            if isinstance(o, str)
        }
        assert used <= set(spec["options"]), used - set(spec["options"])
        for var, option in spec["options"].items():
            assert option.get("default") == defaults.get(var), var
            assert option["description"]
    readme = (ROOT / "roles" / role / "README.md").read_text()
    assert all(f"`{var}`" in readme for var in specs["main"]["options"])


def _groups(hosts: str) -> set[str]:
    """A play's groups (its default pattern; the first play resolves lync2fa_<group>_group)."""
    match = re.fullmatch(r"\{\{ hostvars\.localhost\.lync2fa_play_hosts\.(\w+) \| default\('([\w:]+)'\) \}\}", hosts)
    assert match, hosts
    return set(match.group(2).split(":"))


def test_playbooks_run_the_tiers_in_dependency_order_without_facts():
    resolve, *deploy = load_yaml(PLAYBOOKS / "deploy_2fa.yml")
    # every host, once, on the controller: --limit cannot skip it
    assert resolve["hosts"] == "all" and resolve["tasks"][0]["tags"] == ["always"]
    assert all(t["run_once"] and t["delegate_to"] == "localhost" for t in resolve["tasks"])
    roles = [play["roles"][0]["role"].rsplit(".", 1)[1] for play in deploy]
    tiers = [next(t for t, r in TIER_ROLES.items() if r == role) for role in roles]
    assert set(tiers) == {t.tier for t in TASKS.values() if t.kind == "apply"}
    position = {tier: i for i, tier in enumerate(tiers)}
    for task in TASKS.values():
        if task.kind == "apply":
            assert all(position[TASKS[d].tier] <= position[task.tier] for d in task.after if d in TASKS), task.name
    for play, tier in zip(deploy, tiers, strict=False):
        groups = {t.group for t in TASKS.values() if t.tier == tier and t.kind == "apply"}
        assert _groups(play["hosts"]) == groups and tier in play["tags"]
    _, *verify = load_yaml(PLAYBOOKS / "verify_2fa.yml")
    assert _groups(verify[0]["hosts"]) == {t.group for t in TASKS.values() if t.kind in ("apply", "verify")}
    _, *rollback = load_yaml(PLAYBOOKS / "rollback_2fa.yml")
    rolled = [p["tasks"][0]["ansible.builtin.include_role"]["name"].rsplit(".", 1)[1] for p in rollback[1:]]
    assert rolled == [r for r in reversed(roles) if r in rolled]  # reverse rollout order
    for play in deploy + verify + rollback:
        assert play["gather_facts"] is False


# -- collection metadata and build ----------------------------------------------------------


def test_collection_metadata_is_consistent():
    galaxy = load_yaml(ROOT / "galaxy.yml")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (galaxy["namespace"], galaxy["name"], galaxy["version"]) == ("lync2fa", "twofactor", version)
    assert (ROOT / galaxy["readme"]).is_file()
    assert load_yaml(ROOT / "meta" / "runtime.yml")["requires_ansible"] == ">=2.16.0,<2.20.0"
    assert '"ansible-core>=2.16,<2.20"' in (ROOT / "pyproject.toml").read_text()
    ee_meta = load_yaml(ROOT / "meta" / "execution-environment.yml")
    requirements = (ROOT / ee_meta["dependencies"]["python"]).read_text().split()
    # the engine by its wheel's file, never by name (tests/test_install_instructions.py)
    assert f"lync2fa-{version}-py3-none-any.whl" in " ".join(requirements)
    assert (ROOT / ee_meta["dependencies"]["system"]).read_text().count("krb5") >= 3
    ee = load_yaml(ROOT / "execution-environment.yml")
    assert ee["version"] == 3
    assert ee["dependencies"]["ansible_core"]["package_pip"] == "ansible-core>=2.19,<2.20"
    assert any(
        c["name"].endswith(f"lync2fa-twofactor-{version}.tar.gz") for c in ee["dependencies"]["galaxy"]["collections"]
    )


def test_collection_builds_small_with_modules_roles_and_the_engine_wheel(tmp_path):
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "build_collection.py", "--output-path", tmp_path / "dist"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (artifact,) = (tmp_path / "dist").glob("lync2fa-twofactor-*.tar.gz")
    assert artifact.stat().st_size < 2_000_000
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["namespace"] == "lync2fa"
    for name in TASKS:
        assert {f"plugins/modules/{module_name(name)}.py", f"plugins/action/{module_name(name)}.py"} <= names
    assert {
        "meta/runtime.yml",
        "meta/execution-environment.yml",
        "requirements.txt",
        "bindep.txt",
        "plugins/modules/host_request.ps1",
        "plugins/module_utils/Lync2faPrimitives.psm1",
        "plugins/plugin_utils/engine.py",
        "playbooks/deploy_2fa.yml",
        "roles/ca/tasks/main.yml",
        "roles/verify/meta/argument_specs.yml",
        "inventories/example/group_vars/all/vault.yml",
        "engine/lync2fa-0.1.0-py3-none-any.whl",
    } <= names
    # The engine travels as that wheel, not as source (Galaxy's sanity checks see the collection only).
    assert not any(
        n.startswith(("playbooks/collections", "core/", "tools/", "plugins/ca/", "plugins/client/"))
        or n == "pyproject.toml"
        for n in names
    )
    assert "tests/sanity/ignore-2.19.txt" in names
    assert not any(
        n.split("/")[0] in {".venv", ".venvs", ".git", ".lync2fa", "dist", ".pytest_cache"}
        or (n.startswith("tests/") and not n.startswith("tests/sanity"))
        or ".egg-info" in n
        or "__pycache__" in n
        for n in names
    )


# -- the play's view of the inventory is the CLI's ------------------------------------------


def _play_views(inventory):
    """What EngineAction builds from Ansible's task vars, for every host of an inventory."""
    HostVars(inventory=inventory.manager, variable_manager=inventory.variables, loader=inventory.loader)
    for name in inventory.all_hosts():
        task_vars = inventory.variables.get_vars(host=inventory.manager.get_host(name), include_hostvars=True)
        yield name, PlayInventory(task_vars, name, Templar(loader=inventory.loader, variables=task_vars).template)


def _lab_inventory(tmp_path):
    control.create(tmp_path / "lab", clients=2)  # the layout and hosts.yml only; nothing is served
    hosts = tmp_path / "lab" / "hosts.yml"
    # Unserved, its endpoints have port 0, which the CLI's connection settings refuse: give them one.
    hosts.write_text(re.sub(r"ansible_port: 0\b", "ansible_port: 5985", hosts.read_text()))
    return api.load_inventory(hosts)


@pytest.mark.parametrize("which", ["lab", "example"])
def test_play_view_derives_the_same_parameters_and_connection_as_the_cli(which, tmp_path):
    inventory = (
        _lab_inventory(tmp_path)
        if which == "lab"
        else api.load_inventory(EXAMPLE, vault_password_file=EXAMPLE_VAULT_PASS)
    )
    compared = 0
    for name, play in _play_views(inventory):
        cli_host, play_host = inventory.host(name), play.host(name)
        assert (play_host.fqdn, play_host.groups) == (cli_host.fqdn, cli_host.groups)
        assert ConnectionSettings.from_host(play_host) == ConnectionSettings.from_host(cli_host)
        for task in TASKS.values():
            if task.group in cli_host.groups:
                assert params_for(task, play_host) == params_for(task, cli_host), (task.name, name)
                compared += 1
    derived = [t for t in TASKS.values() if t.derived]
    assert compared >= len(TASKS) and derived, "derived defaults must be exercised"


# -- the example inventory ------------------------------------------------------------------


def test_example_inventory_plans_every_kind_with_its_vault_and_no_network(monkeypatch):
    from lync2fa import transport

    def no_network(*args, **kwargs):
        raise AssertionError("planning must not connect")

    monkeypatch.setattr(transport.ConnectionPool, "get", no_network)
    vault_file = EXAMPLE / "group_vars" / "all" / "vault.yml"
    assert vault_file.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    inventory = api.load_inventory(EXAMPLE, vault_password_file=EXAMPLE_VAULT_PASS)
    plans = {kind: api.plan(inventory, kind=kind) for kind in ("apply", "verify", "rollback")}
    apply = plans["apply"]
    assert {s.task.name for s in apply.steps} == {n for n, t in TASKS.items() if t.kind == "apply"}
    groups = {t.group for t in TASKS.values() if t.kind == "apply"}
    assert {s.host.name for s in apply.steps} == {h.name for g in groups for h in inventory.hosts_in(g)}
    assert all(plans[k].steps for k in plans)
    secrets = apply.secrets()
    assert "Ex4mple-WinRM-Pa55word!" in secrets
    assert ConnectionSettings.from_host(inventory.host("edgepool01")).password == "Ex4mple-Edge-Pa55word!"
    assert "Ex4mple-WinRM-Pa55word!" not in vault_file.read_text()
    pins = {s.host.name: s.params.get("pin") for s in apply.steps if "pin" in s.task.argument_spec()}
    if pins:
        assert len(set(pins.values())) == len(pins) and all(pins.values())
    readme = (EXAMPLE / "README.md").read_text()
    assert EXAMPLE_VAULT_PASS.read_text().strip() in readme and "example only" in readme.lower()


# -- ansible-lint and syntax ----------------------------------------------------------------


def test_playbooks_pass_syntax_check(tmp_path):
    playbooks = sorted(PLAYBOOKS.glob("*.yml"))
    assert [p.name for p in playbooks] == ["deploy_2fa.yml", "rollback_2fa.yml", "verify_2fa.yml"]
    result = run(
        "ansible-playbook", "--syntax-check", "-i", EXAMPLE / "hosts.yml", *playbooks, workdir=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_roles_playbooks_and_metadata_pass_ansible_lint_production(tmp_path):
    result = run(
        "ansible-lint",
        "--offline",
        "--nocolor",
        "--profile",
        "production",
        "roles",
        "playbooks",
        "galaxy.yml",
        "meta",
        "execution-environment.yml",
        "changelogs",
        workdir=tmp_path,
        cwd=ROOT,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
