"""The Argo CD health check and resource actions, run in a real Lua 5.1 runtime (lupa).

Argo CD runs these scripts in gopher-lua (Lua 5.1) with only the base, package and table
libraries and a safe `os` (time, date): no `string`, no `math`. The sandbox below is the same,
so a script that would fail in Argo CD fails here too (see the control test).

Every fixture in fixtures/ is a ModelDeployment whose first comment lines say what Argo CD
must show for it (those in fixtures/recorded/ were written by the operator in e2e runs, see
e2e/fixtures/argocd.py; the rest cover the cases e2e does not reach):

    # health: Suspended
    # message: Paused (AwaitingPromotion): step 2 waits for promote
    # enabled: promote, promote-full, abort        ((none) when nothing is enabled)
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from lupa import lua51

from modelrollout.api import commands, labels, resources
from modelrollout.api.status import PauseReason, Phase
from modelrollout.core import phases

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "argocd" / "modelrollout.io" / "ModelDeployment"
FIXTURE_DIR = pathlib.Path(__file__).parent / "fixtures"
RECORDED = sorted((FIXTURE_DIR / "recorded").glob("*.yaml"))  # statuses the operator wrote in e2e runs
FIXTURES = sorted(FIXTURE_DIR.glob("*.yaml")) + RECORDED
ACTIONS = sorted(p.parent.name for p in (SCRIPTS / "actions").glob("*/action.lua"))
ARGO_HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
NOW = 1738231200

SANDBOX = """
local time, date = os.time, os.date
debug.setmetatable("", nil)  -- gopher-lua without its string library: no ("x"):method()
string, math, io, debug, coroutine, python = nil, nil, nil, nil, nil, nil
os = {time = time, date = date}
"""


class Sandbox:
    """A Lua 5.1 state with what Argo CD's script VM offers, and nothing more."""

    def __init__(self) -> None:
        self.lua = lua51.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=False)
        self.lua.execute(SANDBOX)

    def run(self, script: pathlib.Path | str, obj: dict[str, Any], now: Callable[[], int] | None = None) -> Any:
        globals_ = self.lua.globals()
        globals_.obj = self.lua.table_from(obj, recursive=True)
        if now is not None:
            globals_.os.time = now
        text = script.read_text() if isinstance(script, pathlib.Path) else script
        return to_python(self.lua.execute(text))


def to_python(value: Any) -> Any:
    """Lua tables to dicts and lists (a table with keys 1..n is a list), as Argo CD's JSON encoding does."""
    if lua51.lua_type(value) != "table":
        return value
    items = dict(value.items())
    if items and list(items) == list(range(1, len(items) + 1)):
        return [to_python(v) for v in items.values()]
    return {k: to_python(v) for k, v in items.items()}


def load(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The fixture's object and its expectations (the `# key: value` lines at the top)."""
    expect: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# ") or ": " not in line:
            continue
        key, value = line[2:].split(": ", 1)
        if key in ("health", "message", "enabled"):
            expect[key] = value
    assert set(expect) == {"health", "message", "enabled"}, f"{path.name}: needs health, message and enabled"
    return yaml.safe_load(path.read_text()), expect


def enabled_of(expect: dict[str, str]) -> set[str]:
    return set() if expect["enabled"] == "(none)" else {a.strip() for a in expect["enabled"].split(",")}


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


def test_the_sandbox_refuses_what_argo_cd_refuses(sandbox: Sandbox) -> None:
    with pytest.raises(lua51.LuaError):
        sandbox.run('return {status = string.format("%s", "Healthy")}', {})
    with pytest.raises(lua51.LuaError):
        sandbox.run('return {status = ("healthy"):upper()}', {})
    with pytest.raises(lua51.LuaError):
        sandbox.run("return {n = math.floor(1.5)}", {})
    assert sandbox.run("return {n = os.time()}", {})["n"] > 1_700_000_000


def test_every_fixture_is_a_valid_modeldeployment() -> None:
    assert len(FIXTURES) >= 15
    for path in FIXTURES:
        resources.ModelDeployment.model_validate(load(path)[0])


def test_recorded_fixtures_cover_what_argo_cd_shows_during_a_rollout() -> None:
    shown = {load(path)[1]["health"] for path in RECORDED}
    assert {"Progressing", "Suspended", "Healthy", "Degraded"} <= shown


def test_the_fixtures_cover_every_phase_and_pause_reason() -> None:
    objects = [load(path)[0] for path in FIXTURES]
    statuses = [o["status"] for o in objects if "status" in o]
    assert {s["phase"] for s in statuses} == {p.value for p in Phase}
    assert {s["pauseReason"] for s in statuses if s["phase"] == "Paused"} == {r.value for r in PauseReason}
    assert any("status" not in o for o in objects), "a fixture without status"
    assert any(o["status"]["observedGeneration"] < o["metadata"]["generation"] for o in objects if "status" in o)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_health(sandbox: Sandbox, path: pathlib.Path) -> None:
    obj, expect = load(path)
    health = sandbox.run(SCRIPTS / "health.lua", obj)
    assert health["status"] in ARGO_HEALTH
    assert (health["status"], health["message"]) == (expect["health"], expect["message"])


@pytest.mark.parametrize("fixture, says", [("rolled-back", "failed"), ("rolled-back-aborted", "was aborted")])
def test_rolled_back_without_the_operators_words_still_says_what_happened(sandbox: Sandbox, fixture: str,
                                                                           says: str) -> None:
    obj, _ = load(FIXTURES[0].with_name(f"{fixture}.yaml"))
    del obj["status"]["message"]
    health = sandbox.run(SCRIPTS / "health.lua", obj)
    assert health["status"] == "Degraded"
    assert health["message"] == f"RolledBack: the new revision 7b21aa {says} and was rolled back; 5d8f9c serves"


def test_paused_without_the_operators_words_names_the_reason(sandbox: Sandbox) -> None:
    obj, _ = load(FIXTURES[0].with_name("paused-command.yaml"))
    del obj["status"]["message"]
    assert sandbox.run(SCRIPTS / "health.lua", obj) == {"status": "Suspended", "message": "Paused (Command)"}


def test_health_of_an_unknown_phase_is_unknown(sandbox: Sandbox) -> None:
    obj, _ = load(FIXTURES[0].with_name("succeeded.yaml"))
    obj["status"]["phase"] = "Exploded"
    assert sandbox.run(SCRIPTS / "health.lua", obj)["status"] == "Unknown"


def test_every_command_but_undo_has_an_action() -> None:
    assert set(ACTIONS) == {v.value for v in commands.Verb} - {commands.Verb.UNDO.value}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_discovery(sandbox: Sandbox, path: pathlib.Path) -> None:
    obj, expect = load(path)
    actions = sandbox.run(SCRIPTS / "actions" / "discovery.lua", obj)
    assert set(actions) == set(ACTIONS), "every action is listed, enabled or not"
    assert all(isinstance(a["disabled"], bool) and a["displayName"] and a["iconClass"] for a in actions.values())
    assert {name for name, a in actions.items() if not a["disabled"]} == enabled_of(expect)


# What each command makes of the phase it is given in, by the core's own state machine.
LEADS_TO = {
    "promote": {Phase.PROGRESSING, Phase.PROMOTING},
    "promote-full": {Phase.PROMOTING},
    "abort": {Phase.ROLLED_BACK},
    "retry": {Phase.PROGRESSING, Phase.PAUSED},
    "pause": {Phase.PAUSED},
    "resume": {Phase.PROGRESSING},
}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_enabled_actions_are_moves_the_state_machine_allows(path: pathlib.Path) -> None:
    obj, expect = load(path)
    if "status" not in obj:
        assert enabled_of(expect) == set()
        return
    phase = Phase(obj["status"]["phase"])
    for action in enabled_of(expect):
        assert any(phases.allowed(phase, after) and after is not phase for after in LEADS_TO[action]), (
            f"{action} is enabled in {phase}, but the core allows none of {sorted(LEADS_TO[action])} from it"
        )


@pytest.mark.parametrize("verb", ACTIONS)
@pytest.mark.parametrize("fixture", ["progressing", "paused-command", "rolled-back", "no-status"])
def test_action_writes_the_command_annotation(sandbox: Sandbox, verb: str, fixture: str) -> None:
    obj, _ = load(FIXTURES[0].with_name(f"{fixture}.yaml"))
    before = copy.deepcopy(obj)
    after = sandbox.run(SCRIPTS / "actions" / verb / "action.lua", obj, now=lambda: NOW)

    value = after["metadata"]["annotations"][labels.COMMAND]
    command = commands.parse(value)
    assert command.verb == commands.Verb(verb)
    assert commands.render(command) == value, "compact JSON with sorted keys, as the operator renders it"
    assert command.id == f"argocd-{verb}-{NOW}-{before['metadata']['generation']}"
    canary = before.get("status", {}).get("canaryRevision")
    pinned = verb in ("promote", "promote-full")
    assert command.revision == (canary if pinned else None)

    del after["metadata"]["annotations"]
    assert after == before, "the action changes nothing but the annotation"


def test_action_keeps_other_annotations_and_replaces_an_old_command(sandbox: Sandbox) -> None:
    obj, _ = load(FIXTURES[0].with_name("paused-awaiting-promotion.yaml"))
    obj["metadata"]["annotations"] = {"team": "fraud", labels.COMMAND: '{"id":"old","verb":"pause"}'}
    after = sandbox.run(SCRIPTS / "actions" / "promote" / "action.lua", obj, now=lambda: NOW)
    annotations = after["metadata"]["annotations"]
    assert annotations["team"] == "fraud"
    assert commands.parse(annotations[labels.COMMAND]).verb == commands.Verb.PROMOTE


def test_each_press_is_a_new_command(sandbox: Sandbox) -> None:
    """The operator runs each id once: a second press, or another verb, must bring a new id."""
    obj, _ = load(FIXTURES[0].with_name("progressing.yaml"))
    clock = iter([NOW, NOW + 1, NOW + 1])

    def ids(verb: str) -> str:
        after = sandbox.run(SCRIPTS / "actions" / verb / "action.lua", copy.deepcopy(obj), now=lambda: next(clock))
        return commands.parse(after["metadata"]["annotations"][labels.COMMAND]).id

    first, second, other = ids("pause"), ids("pause"), ids("abort")
    assert len({first, second, other}) == 3
