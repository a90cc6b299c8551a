"""Commands a person (or Argo CD) gives a running rollout, through one annotation.

`kubectl modelrollout promote` and Argo CD's resource actions both write the annotation
`modelrollout.io/command` on the ModelDeployment; the operator reacts to it. An annotation,
not a spec field: GitOps tools leave annotations they did not write alone, so self-heal does not
revert a promotion (Flagger #1814), and no subresource is needed.

The value is compact JSON, which a Lua action can write with string concatenation:

    {"id":"2025-01-30T10:00:00Z","verb":"promote"}
    {"id":"9c1e...","revision":"7b21aa","verb":"promote-full"}
    {"id":"9c1e...","toRevision":"5d8f9c","verb":"undo"}

`id` makes handling idempotent: the operator records the id of the last command it handled
in status.lastCommand and ignores the annotation while the id is the same, so a restart or a
re-sync never runs a command twice, and the annotation may stay in place. `revision`, when
given, is the canary revision the command was meant for; if another rollout has started since,
the command is refused rather than applied to the wrong revision.

For people typing `kubectl annotate`, a short form is accepted too: `verb[:toRevision][@id]`,
e.g. `promote`, `promote@2`, `undo:5d8f9c`. Without `@id` the id is the whole value, so the same
short value runs once; add a new `@id` to run it again.
"""

from __future__ import annotations

import enum
import json
import re

import pydantic

from modelrollout.api import wire

_SHORT = re.compile(r"^(?P<verb>[a-z-]+)(?::(?P<to>[0-9a-z]+))?(?:@(?P<id>[-0-9A-Za-z_.:]+))?$")


class Verb(enum.StrEnum):
    """What a command asks for."""

    PROMOTE = "promote"  # finish the current step (a pause, an analysis) and go on
    PROMOTE_FULL = "promote-full"  # skip the remaining steps: all traffic to the new revision now
    ABORT = "abort"  # roll back to stable now and reject the new revision
    RETRY = "retry"  # start the rollout of a rejected (rolled back or aborted) revision again
    PAUSE = "pause"  # hold where it is, until resume
    RESUME = "resume"  # continue after pause
    UNDO = "undo"  # roll back to the previous stable revision, or to toRevision


class Command(wire.Record):
    """One command, as parsed from the annotation."""

    verb: Verb
    """What to do."""

    id: str = pydantic.Field(min_length=1, max_length=128)
    """Unique per command; the operator handles each id once."""

    revision: str | None = pydantic.Field(default=None, max_length=64)
    """The canary revision the command is meant for; refused if another revision is rolling out."""

    to_revision: str | None = pydantic.Field(default=None, max_length=64)
    """For undo: the revision (hash, from status.history) to go back to; default the previous one."""


def parse(value: str) -> Command:
    """The command an annotation value stands for; ValueError if it is not one.

        parse('{"id":"a1","verb":"abort"}') -> Command(verb=ABORT, id="a1")
        parse("promote")                    -> Command(verb=PROMOTE, id="promote")
        parse("undo:5d8f9c@7")              -> Command(verb=UNDO, id="7", to_revision="5d8f9c")
    """
    text = value.strip()
    if text.startswith("{"):
        try:
            return Command.model_validate_json(text)
        except pydantic.ValidationError as error:
            raise ValueError(f"{value!r} is not a command: {error}") from None
    match = _SHORT.match(text)
    if match is None:
        raise ValueError(f"{value!r} is not a command: expected JSON or verb[:toRevision][@id]")
    try:
        verb = Verb(match["verb"])
    except ValueError:
        known = ", ".join(verb.value for verb in Verb)
        raise ValueError(f"{match['verb']!r} is not a command verb; known: {known}") from None
    return Command(verb=verb, id=match["id"] or text, to_revision=match["to"])


def render(command: Command) -> str:
    """The annotation value for a command: compact JSON with sorted keys."""
    body = command.model_dump(mode="json", exclude_none=True)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
