"""Query templates: `{{namespace}}`, `{{name}}`, `{{track}}`, `{{revision}}` and `{{interval}}`.

Rendering is plain substitution; an unknown placeholder is an error that names it, because a
typo would otherwise reach Prometheus as a literal and answer an empty vector forever.

    render('up{namespace="{{namespace}}"}', Context("ml", "scorer", "canary", "7b21aa", "30s"))
        -> 'up{namespace="ml"}'

`batched` turns a per-track template into one that reads every ModelDeployment under analysis
at once, when the template allows it: its placeholders are only the exact matchers
`namespace="{{namespace}}"`, `modeldeployment="{{name}}"` and `revision="{{revision}}"`, and
every aggregation keeps the pod (`sum by (pod) (...)`). The matchers become regular
expressions over the ModelDeployments read together, and every `by (...)` gains `namespace,
modeldeployment, revision`, so each answered series says whose it is:

    batched('sum by (pod) (x{namespace="{{namespace}}",modeldeployment="{{name}}",revision="{{revision}}"})')
        -> 'sum by (namespace, modeldeployment, revision, pod) (x{namespace=~"{{namespaces}}",
            modeldeployment=~"{{names}}",revision=~"{{revisions}}"})'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from modelrollout import errors

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")
OWNER_LABELS = ("namespace", "modeldeployment", "revision")
"""The target labels that say which ModelDeployment and revision a series belongs to."""
_EXACT = {
    "namespace": re.compile(r'namespace\s*=\s*"\{\{\s*namespace\s*\}\}"'),
    "modeldeployment": re.compile(r'modeldeployment\s*=\s*"\{\{\s*name\s*\}\}"'),
    "revision": re.compile(r'revision\s*=\s*"\{\{\s*revision\s*\}\}"'),
}
_BATCH_MATCHERS = {"namespace": "namespaces", "modeldeployment": "names", "revision": "revisions"}
_AGGREGATION = re.compile(
    r"\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*(by\s*\(([^)]*)\))?\s*\(")
_UNBATCHABLE = re.compile(r"\b(without|on|ignoring|group_left|group_right|label_replace|label_join)\s*\(")


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
    return _substitute(template, context.values())


def _substitute(template: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            known = ", ".join("{{" + k + "}}" for k in values)
            raise errors.SpecError(f"unknown placeholder {{{{{key}}}}} in query {template!r}; known: {known}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)


def batched(template: str) -> str | None:
    """The template for many ModelDeployments at once, or None when this one cannot be batched."""
    out = template
    for label, exact in _EXACT.items():
        out = exact.sub(f'{label}=~"{{{{{_BATCH_MATCHERS[label]}}}}}"', out)
    left = {m.group(1) for m in _PLACEHOLDER.finditer(out)} - set(_BATCH_MATCHERS.values())
    if left or _UNBATCHABLE.search(out):
        return None
    if not all(f"{{{{{placeholder}}}}}" in out for placeholder in _BATCH_MATCHERS.values()):
        return None  # a series of another ModelDeployment could not be told apart
    aggregations = list(_AGGREGATION.finditer(out))
    if any(m.group(3) is None or "pod" not in _labels(m.group(3)) for m in aggregations):
        return None  # an aggregation that drops the pod (or groups without `by`) loses the owner too
    for match in reversed(aggregations):
        labels = [*OWNER_LABELS, *(label for label in _labels(match.group(3)) if label not in OWNER_LABELS)]
        out = f"{out[:match.start(2)]}by ({', '.join(labels)}) {out[match.end(2):].lstrip()}"
    return out


def _labels(clause: str) -> list[str]:
    return [label.strip() for label in clause.split(",") if label.strip()]


def render_batch(template: str, owners: Iterable[tuple[str, str]], revisions: Iterable[str]) -> str:
    """A batched template for these (namespace, name) owners and revisions (regex-escaped)."""
    owners = sorted(set(owners))
    return _substitute(template, {
        "namespaces": _alternatives(namespace for namespace, _ in owners),
        "names": _alternatives(name for _, name in owners),
        "revisions": _alternatives(revisions),
    })


def _alternatives(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly these names, as a PromQL string's content."""
    # Kubernetes names hold [a-z0-9.-]; only the dot means something in a regex. In a PromQL
    # double-quoted string a backslash is itself escaped.
    return "|".join(sorted({value.replace(".", "\\\\.") for value in values}))
