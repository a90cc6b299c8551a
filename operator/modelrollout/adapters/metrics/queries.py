"""Query templates: `{{namespace}}`, `{{name}}`, `{{track}}`, `{{revision}}` and `{{interval}}`.

Rendering is plain substitution; an unknown placeholder is an error that names it, because a
typo would otherwise reach Prometheus as a literal and answer an empty vector forever.

    render('up{namespace="{{namespace}}"}', Context("ml", "scorer", "canary", "7b21aa", "30s"))
        -> 'up{namespace="ml"}'
"""

from __future__ import annotations

import dataclasses
import re

from modelrollout import errors

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")


@dataclasses.dataclass(frozen=True)
class Context:
    namespace: str
    name: str
    track: str
    revision: str
    interval: str

    def values(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def render(template: str, context: Context) -> str:
    values = context.values()

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            known = ", ".join("{{" + k + "}}" for k in values)
            raise errors.SpecError(f"unknown placeholder {{{{{key}}}}} in query {template!r}; known: {known}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)
