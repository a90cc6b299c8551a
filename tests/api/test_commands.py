"""The command annotation: what the kubectl plugin and Argo CD's Lua actions write."""

import pytest

from modelrollout.api import commands


@pytest.mark.parametrize(
    "value, verb, command_id, to_revision, revision",
    [
        ('{"id":"a1","verb":"abort"}', commands.Verb.ABORT, "a1", None, None),
        ('{"id":"x","revision":"7b21aa","verb":"promote-full"}', commands.Verb.PROMOTE_FULL, "x", None, "7b21aa"),
        ('{"id":"u","toRevision":"5d8f9c","verb":"undo"}', commands.Verb.UNDO, "u", "5d8f9c", None),
        ("promote", commands.Verb.PROMOTE, "promote", None, None),
        ("promote@2", commands.Verb.PROMOTE, "2", None, None),
        ("  resume ", commands.Verb.RESUME, "resume", None, None),
        ("undo:5d8f9c@2025-01-30T10:00:00Z", commands.Verb.UNDO, "2025-01-30T10:00:00Z", "5d8f9c", None),
        ("undo:5d8f9c", commands.Verb.UNDO, "undo:5d8f9c", "5d8f9c", None),
    ],
)
def test_parse(value: str, verb: commands.Verb, command_id: str, to_revision: str | None, revision: str | None) -> None:
    command = commands.parse(value)
    assert (command.verb, command.id) == (verb, command_id)
    assert (command.to_revision, command.revision) == (to_revision, revision)


@pytest.mark.parametrize(
    "value", ["", "launch", '{"verb":"promote"}', '{"id":"1","verb":"launch"}', "promote now", "{"]
)
def test_parse_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        commands.parse(value)


def test_render_is_compact_sorted_json_and_round_trips() -> None:
    command = commands.Command(verb=commands.Verb.UNDO, id="9c1e", to_revision="5d8f9c")
    text = commands.render(command)
    assert text == '{"id":"9c1e","toRevision":"5d8f9c","verb":"undo"}'
    assert commands.parse(text) == command


def test_a_lua_action_can_write_a_command() -> None:
    # what argocd/.../actions/promote/action.lua concatenates
    lua_written = '{"id":"' + "2025-01-30T10:00:00Z" + '","verb":"promote"}'
    assert commands.parse(lua_written).verb is commands.Verb.PROMOTE
