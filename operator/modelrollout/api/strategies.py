"""spec.strategy: how a new revision replaces the stable one (canary, blue-green, shadow or A/B test).

`type` names the strategy and exactly the sections it uses must be present: a Canary carries
`canary`, a BlueGreen `blueGreen`, a Shadow `shadow` plus the section of the strategy it hands
over to (`shadow.then`), an ABTest `abTest`. Settings that would silently do nothing are refused.

A canary step is an object with exactly one key, `setWeight`, `pause` or `analyze`, as users of
Argo Rollouts write them. In Python each is its own class (`SetWeight`, `Pause`, `Analyze`),
so code matches on the type; in the CRD they are one object kind with a rule that exactly one
key is set, because structural schemas have no tagged unions.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Annotated, Any

import pydantic

from modelrollout.api import durations, wire


class StrategyType(enum.StrEnum):
    """Canary moves traffic in steps. BlueGreen runs a full preview, then switches all traffic
    at once. Shadow mirrors a copy of the traffic to the new revision (its answers are
    discarded), judges it, then hands over to Canary, BlueGreen or a manual switch. ABTest sends a
    cohort of users (matched by header or cookie) to a challenger and keeps it only if it wins on a
    business goal."""

    CANARY = "Canary"
    BLUE_GREEN = "BlueGreen"
    SHADOW = "Shadow"
    AB_TEST = "ABTest"


class Handover(enum.StrEnum):
    """What follows a shadow phase that passed: a canary, a blue-green switch, or a switch on promote."""

    CANARY = "Canary"
    BLUE_GREEN = "BlueGreen"
    MANUAL = "Manual"


class PauseSpec(wire.Object):
    """Hold the rollout: for a while, or until `kubectl modelrollout promote` when no duration is given."""

    duration: durations.Duration | None = None
    """How long to hold; absent: until promoted."""


class AnalyzeSpec(wire.Object):
    """Judge the new revision against the stable one for a while, with spec.analysis."""

    duration: durations.Duration
    """How long the analysis runs; it ends early when the evidence is clear either way."""


class SetWeight(wire.Object):
    """A step that sends this percentage of requests to the canary."""

    set_weight: int = pydantic.Field(ge=0, le=100)
    """Percentage of requests (0-100) that the canary answers from this step on."""


class Pause(wire.Object):
    """A step that holds the rollout."""

    pause: PauseSpec
    """Hold for `duration`, or until promoted (`pause: {}`)."""


class Analyze(wire.Object):
    """A step that holds the weight while the analysis judges."""

    analyze: AnalyzeSpec
    """Judge for `duration`."""


_ACTIONS = {"setWeight": "setWeight", "set_weight": "setWeight", "pause": "pause", "analyze": "analyze"}
_TAGS: dict[type[wire.Object], str] = {SetWeight: "setWeight", Pause: "pause", Analyze: "analyze"}


def _action(step: Any) -> str | None:
    """The tag of a step: the one action key it holds, or None if it has none or several."""
    if isinstance(step, Mapping):
        found = [_ACTIONS[key] for key in step if key in _ACTIONS]
        return found[0] if len(found) == 1 else None
    return _TAGS.get(type(step))


ONE_ACTION = wire.Rule(
    cel="(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analyze) ? 1 : 0) == 1",
    message="a step has exactly one of setWeight, pause or analyze",
)

Step = Annotated[
    Annotated[SetWeight, pydantic.Tag("setWeight")]
    | Annotated[Pause, pydantic.Tag("pause")]
    | Annotated[Analyze, pydantic.Tag("analyze")],
    pydantic.Discriminator(_action, custom_error_type="canary_step", custom_error_message=ONE_ACTION.message),
    pydantic.Field(json_schema_extra=wire.validations(ONE_ACTION)),
]
"""One canary step: SetWeight, Pause or Analyze."""

_WEIGHTS_GROW = wire.Rule(
    cel="self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
    message="setWeight must not decrease from one step to a later one",
    field_path=".steps",
)
_TRAFFIC_BEFORE_ANALYSIS = wire.Rule(
    cel=(
        "!self.steps.exists(s, has(s.analyze)) || "
        "self.steps.map(s, has(s.analyze) || (has(s.setWeight) && s.setWeight > 0), has(s.setWeight))[0]"
    ),
    message="an analyze step needs canary traffic to judge: put a setWeight above 0 before the first analyze",
    field_path=".steps",
)


class Canary(wire.Object):
    """Canary settings: the steps, walked in order; after the last one the canary is promoted."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.validations(_WEIGHTS_GROW, _TRAFFIC_BEFORE_ANALYSIS))

    steps: list[Step] = pydantic.Field(min_length=1, max_length=64)
    """The steps, e.g. [{setWeight: 5}, {analyze: {duration: 5m}}, {setWeight: 50}, {pause: {}}]."""

    @pydantic.model_validator(mode="after")
    def _steps_make_sense(self) -> Canary:
        weights = [step.set_weight for step in self.steps if isinstance(step, SetWeight)]
        _WEIGHTS_GROW.check(weights == sorted(weights))
        first_analysis = next((i for i, step in enumerate(self.steps) if isinstance(step, Analyze)), None)
        if first_analysis is not None:
            _TRAFFIC_BEFORE_ANALYSIS.check(any(weight > 0 for weight in self.weights_before(first_analysis)))
        return self

    def weights_before(self, index: int) -> list[int]:
        """The setWeight values of the steps before `index`."""
        return [step.set_weight for step in self.steps[:index] if isinstance(step, SetWeight)]


_OLD_PODS_OUTLAST_ANALYSIS = wire.Rule(
    cel=(
        "!has(self.postPromotionAnalysis) || "
        "duration(self.scaleDownDelay) >= duration(self.postPromotionAnalysis.duration)"
    ),
    message="scaleDownDelay must be at least postPromotionAnalysis.duration: a failure switches back to the old pods",
    field_path=".scaleDownDelay",
)


class BlueGreen(wire.Object):
    """Blue-green settings: run the new revision in full beside the stable one, then switch all traffic."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.validations(_OLD_PODS_OUTLAST_ANALYSIS))

    auto_promote: bool = True
    """Switch as soon as the preview is ready (and its pre-promotion analysis passed); false: wait for promote."""

    preview_replicas: int | None = pydantic.Field(default=None, ge=1, le=1000)
    """Pods of the preview before the switch; default spec.replicas (scaled up to it at the switch)."""

    scale_down_delay: durations.Duration = "30s"
    """How long the old pods keep running after the switch: in-flight requests finish, and a failed
    post-promotion analysis can switch back at once."""

    pre_promotion_analysis: AnalyzeSpec | None = None
    """Judge the preview before the switch, on the traffic it gets through its own Service (a load
    test, internal users): the users' traffic does not reach it yet."""

    post_promotion_analysis: AnalyzeSpec | None = None
    """Judge the new revision after the switch against the SLOs (the old one no longer serves, so
    there is nothing to compare with); a failure switches back while the old pods still run."""

    @pydantic.model_validator(mode="after")
    def _old_pods_wait(self) -> BlueGreen:
        analysis = self.post_promotion_analysis
        _OLD_PODS_OUTLAST_ANALYSIS.check(
            analysis is None
            or durations.parse_duration(self.scale_down_delay) >= durations.parse_duration(analysis.duration)
        )
        return self


class Shadow(wire.Object):
    """Shadow settings: mirror a copy of the requests to the new revision, judge it, then hand over."""

    mirror_percent: int = pydantic.Field(default=100, ge=1, le=100)
    """Percentage of requests copied to the new revision (1-100)."""

    duration: durations.Duration
    """How long to mirror and judge before handing over."""

    replicas: int | None = pydantic.Field(default=None, ge=1, le=1000)
    """Pods of the new revision while shadowing; default enough for the mirrored share of spec.replicas."""

    then: Handover = Handover.CANARY
    """What follows when the shadow analysis passed: Canary, BlueGreen or Manual (switch on promote)."""


HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
"""An HTTP header name (RFC 9110 token), as Gateway API accepts it."""


class CookieMatch(wire.Object):
    """A cookie the request must carry with this exact value."""

    name: str = pydantic.Field(min_length=1, max_length=256, pattern=HEADER_NAME)
    """The cookie's name."""

    value: str = pydantic.Field(min_length=1, max_length=1024, pattern=r"^[^;,\s]+$")
    """The cookie's value (no spaces, commas or semicolons)."""


_MATCHES_SOMETHING = wire.Rule(
    cel="has(self.headers) || has(self.cookie)",
    message="a match needs headers, a cookie or both",
)
# A structural schema cannot constrain a map's keys (no propertyNames, no patternProperties): a rule does.
_HEADER_NAMES = wire.Rule(
    cel=f'self.all(k, size(k) <= 256 && k.matches("{HEADER_NAME}"))',
    message="a header name is an HTTP token of up to 256 letters, digits and !#$%&'*+.^_`|~-",
)


_HEADERS_DISTINCT = wire.Rule(
    cel=("!has(self.headers) || self.headers.all(k, "
         "self.headers.filter(j, j.lowerAscii() == k.lowerAscii()).size() == 1)"),
    message="header names are case-insensitive: a match names each header once",
    field_path=".headers",
)
_COOKIE_ONCE = wire.Rule(
    cel="!has(self.cookie) || !has(self.headers) || !self.headers.exists(k, k.lowerAscii() == 'cookie')",
    message="a match with a cookie cannot also match the Cookie header: use one of them",
    field_path=".headers",
)


class CohortMatch(wire.Object):
    """One rule of the cohort: a request matches when all of its headers and its cookie match."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.validations(_MATCHES_SOMETHING, _HEADERS_DISTINCT, _COOKIE_ONCE))

    headers: dict[str, Annotated[str, pydantic.StringConstraints(min_length=1, max_length=4096)]] | None = (
        pydantic.Field(default=None, min_length=1, max_length=16, json_schema_extra=wire.validations(_HEADER_NAMES)))
    """Headers and their exact values, e.g. {x-cohort: b}; names are case-insensitive."""

    cookie: CookieMatch | None = None
    """A cookie and its exact value, e.g. {name: cohort, value: b}."""

    @pydantic.field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str] | None) -> dict[str, str] | None:
        _HEADER_NAMES.check(all(len(name) <= 256 and re.fullmatch(HEADER_NAME, name) for name in headers or {}))
        return headers

    @pydantic.model_validator(mode="after")
    def _matches_something(self) -> CohortMatch:
        _MATCHES_SOMETHING.check(self.headers is not None or self.cookie is not None)
        names = [name.lower() for name in self.headers or {}]
        _HEADERS_DISTINCT.check(len(names) == len(set(names)))
        _COOKIE_ONCE.check(self.cookie is None or "cookie" not in names)
        return self


class OnWin(enum.StrEnum):
    """What a challenger that won becomes: promoted at once, or held until `kubectl modelrollout promote`."""

    PROMOTE = "Promote"
    PAUSE = "Pause"


class ABTest(wire.Object):
    """A/B test settings: the matched cohort goes to the challenger, everyone else stays on stable; the
    challenger is kept only if it beats stable on `goal` by `minimumEffect`, with the SLOs as guardrails."""

    match: list[CohortMatch] = pydantic.Field(min_length=1, max_length=16)
    """The requests that go to the challenger: any rule matches, e.g. [{headers: {x-cohort: b}}]."""

    duration: durations.Duration
    """The longest the test runs; it ends early once the goal is decided. At the end, undecided keeps stable."""

    goal: str = pydantic.Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """The metric of spec.analysis.metrics the challenger must win on; its direction is higher-is-better."""

    minimum_effect: float = pydantic.Field(default=0.02, gt=0, le=10)
    """The relative improvement over stable that counts as a win (0.02: 2 % better)."""

    on_win: OnWin = OnWin.PROMOTE
    """Promote (default) or Pause (the winner waits for promote)."""

    replicas: int | None = pydantic.Field(default=None, ge=1, le=1000)
    """Pods of the challenger; default spec.replicas (the cohort's share is not known in advance)."""


def _section_rules(section: str, wanted: str, users: str) -> tuple[wire.Rule, wire.Rule]:
    """The pair of rules that make `section` present exactly when the strategy uses it."""
    required = wire.Rule(
        cel=f"!({wanted}) || has(self.{section})",
        message=f"{users} needs the {section} section",
        field_path=f".{section}",
        reason=wire.Reason.REQUIRED,
    )
    forbidden = wire.Rule(
        cel=f"({wanted}) || !has(self.{section})",
        message=f"the {section} section is only used by {users}",
        field_path=f".{section}",
        reason=wire.Reason.FORBIDDEN,
    )
    return required, forbidden


_HANDS_TO = "(self.type == 'Shadow' && has(self.shadow) && self.shadow.then == '{0}')"
_CANARY_RULES = _section_rules(
    "canary", "self.type == 'Canary' || " + _HANDS_TO.format("Canary"), "type Canary (or Shadow then Canary)"
)
_BLUE_GREEN_RULES = _section_rules(
    "blueGreen",
    "self.type == 'BlueGreen' || " + _HANDS_TO.format("BlueGreen"),
    "type BlueGreen (or Shadow then BlueGreen)",
)
_SHADOW_RULES = _section_rules("shadow", "self.type == 'Shadow'", "type Shadow")
_AB_TEST_RULES = _section_rules("abTest", "self.type == 'ABTest'", "type ABTest")


class Strategy(wire.Object):
    """The strategy and its settings: the section named by type (Shadow also carries the one it hands over to)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.validations(*_CANARY_RULES, *_BLUE_GREEN_RULES, *_SHADOW_RULES, *_AB_TEST_RULES)
    )

    type: StrategyType
    """Canary, BlueGreen, Shadow or ABTest."""

    canary: Canary | None = None
    """Canary steps; with type Canary, or Shadow handing over to Canary."""

    blue_green: BlueGreen | None = None
    """Blue-green settings; with type BlueGreen, or Shadow handing over to BlueGreen."""

    shadow: Shadow | None = None
    """Shadow settings; with type Shadow."""

    ab_test: ABTest | None = None
    """A/B test settings; with type ABTest."""

    @property
    def after_shadow(self) -> StrategyType | None:
        """The strategy that follows a passed shadow phase; None for a manual switch or no shadow."""
        if self.shadow is None or self.shadow.then is Handover.MANUAL:
            return None
        return StrategyType(self.shadow.then.value)

    @pydantic.model_validator(mode="after")
    def _sections_match_type(self) -> Strategy:
        handover = self.shadow.then if self.type is StrategyType.SHADOW and self.shadow else None
        wants_canary = self.type is StrategyType.CANARY or handover is Handover.CANARY
        wants_blue_green = self.type is StrategyType.BLUE_GREEN or handover is Handover.BLUE_GREEN
        wants_shadow = self.type is StrategyType.SHADOW
        wants_ab_test = self.type is StrategyType.AB_TEST
        for (required, forbidden), wanted, section in (
            (_CANARY_RULES, wants_canary, self.canary),
            (_BLUE_GREEN_RULES, wants_blue_green, self.blue_green),
            (_SHADOW_RULES, wants_shadow, self.shadow),
            (_AB_TEST_RULES, wants_ab_test, self.ab_test),
        ):
            required.check(not wanted or section is not None)
            forbidden.check(wanted or section is None)
        return self
