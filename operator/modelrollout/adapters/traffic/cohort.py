"""An A/B test's cohort as header conditions, for the providers that route by header.

A `CohortMatch` holds when every header it names has its exact value and its cookie is in the
Cookie header; a request goes to the candidate when any of the split's matches holds. Gateway
API and Istio both match headers, not cookies, so the cookie becomes a regular expression over
the whole Cookie header:

    cookie_regex("cohort", "b") -> '^(.*[;,])?\\s*cohort=b\\s*([;,].*)?$'

It holds for `cohort=b`, `a=1; cohort=b; z=2` (and `a=1, cohort=b`, as a proxy may fold two
Cookie headers), not for `cohort=bb`, `xcohort=b` or `a=cohort=b`. It is anchored at both ends,
so it means the same to an implementation that matches the whole value (Envoy, hence Istio and
most Gateways) as to one that searches for a match. It uses only syntax that RE2, ECMAScript
(with or without the `u` flag) and Python's `re` read alike: no lookaround, no `\\z`, and only the
characters that are syntax in all three are escaped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from modelrollout.api import strategies

COOKIE_HEADER = "cookie"
FIELD = "spec.strategy.abTest.match"
"""Where the matches come from, for error messages (`FIELD[i]` is the split's i-th match)."""

_SYNTAX = frozenset("\\^$.|?*+()[]{}")
"""Characters with a meaning in a regular expression; escaping anything else (as Python's
`re.escape` does with `-`, `#`, `&`, `~`) is an error for ECMAScript with the `u` flag."""


def escape(text: str) -> str:
    """`text` as a literal in RE2, ECMAScript and Python.

    >>> escape("a.b+c-d")
    'a\\\\.b\\\\+c-d'
    """
    return "".join("\\" + c if c in _SYNTAX else c for c in text)


def cookie_regex(name: str, value: str) -> str:
    """A regular expression that holds, over the whole Cookie header, when it carries the cookie
    `name` with exactly `value` as one of its `;`-separated pairs (`,` too, for folded headers).
    Cookie names and values are case-sensitive; neither may contain `;`, `,` or spaces."""
    return rf"^(.*[;,])?\s*{escape(name)}={escape(value)}\s*([;,].*)?$"


@dataclasses.dataclass(frozen=True)
class Condition:
    """One header condition: the header `name` (lower case) equals `value`, or, with `regex`,
    the whole header value matches the regular expression `value`."""

    name: str
    value: str
    regex: bool = False


def conditions(match: strategies.CohortMatch) -> tuple[Condition, ...]:
    """The header conditions of one cohort match: its headers sorted by (lower-case) name, then
    the cookie's, on the Cookie header. No two name the same header: the API refuses a match that
    names a header twice or the Cookie header beside a cookie (`strategies.CohortMatch`).

        conditions({headers: {X-Cohort: b}, cookie: {name: beta, value: "1"}})
            -> (Condition("x-cohort", "b"), Condition("cookie", cookie_regex("beta", "1"), regex=True))
    """
    found = sorted((Condition(name.lower(), value) for name, value in (match.headers or {}).items()),
                   key=lambda c: c.name)
    if match.cookie is not None:
        found.append(Condition(COOKIE_HEADER, cookie_regex(match.cookie.name, match.cookie.value), regex=True))
    return tuple(found)


def each(cohort: Sequence[strategies.CohortMatch]) -> list[tuple[str, tuple[Condition, ...]]]:
    """(where, conditions) of every match of a cohort, in the order of the spec."""
    return [(f"{FIELD}[{index}]", conditions(match)) for index, match in enumerate(cohort)]
