"""The wire format every API model shares, and the CEL rules that travel with the models.

One place decides how Python names meet YAML names (snake_case attributes, camelCase keys),
how unknown keys are treated, and where the CRD's descriptions come from (the docstring under
each attribute). Cross-field rules are declared once as `Rule`s next to the model they guard:
`crd.py` writes them into the schema as `x-kubernetes-validations`, so the API server refuses
bad objects, and the model's own validator raises the same message, so the operator and the
kubectl plugin refuse them too without a round trip.

Three kinds of model:
* `Object`: a closed part of the spec. Unknown keys are errors, as in the CRD.
* `OpenObject`: a part the CRD keeps open (`x-kubernetes-preserve-unknown-fields`), such as
  the pod template; unknown keys are kept and dumped back unchanged.
* `Record`: status and envelopes. Unknown keys are ignored, so an older operator can still read
  what a newer one wrote.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any

import pydantic
import pydantic.alias_generators

# The settings are spelled out in each class, not shared through **kwargs: pydantic's mypy plugin
# reads them literally (validate_by_name lets Python code construct models with snake_case names).


class Object(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=pydantic.alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        frozen=True,
        extra="forbid",
    )


class OpenObject(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=pydantic.alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        frozen=True,
        extra="allow",
    )


class Record(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=pydantic.alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        frozen=True,
        extra="ignore",
    )


AnyJSON = Annotated[
    pydantic.JsonValue,
    pydantic.WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]
"""Any JSON value, kept as given (a request body, an expected value)."""


class Reason(enum.StrEnum):
    """How the API server words a failed rule: "Invalid value", "Required value", "Forbidden"."""

    INVALID = "FieldValueInvalid"
    REQUIRED = "FieldValueRequired"
    FORBIDDEN = "FieldValueForbidden"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One cross-field rule: a CEL expression over `self` and the message shown when it is false."""

    cel: str
    message: str
    field_path: str | None = None  # relative to self, e.g. ".canary"; the error then names it
    reason: Reason = Reason.INVALID
    message_expression: str | None = None  # CEL for a message with the values in it; `message` is the fallback
    optional_old_self: bool = False  # the rule reads `oldSelf` (an optional, none on create): a transition rule

    def schema(self) -> dict[str, str | bool]:
        entry: dict[str, str | bool] = {"rule": self.cel, "message": self.message}
        if self.message_expression is not None:
            entry["messageExpression"] = self.message_expression
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not Reason.INVALID:
            entry["reason"] = self.reason.value
        if self.optional_old_self:
            entry["optionalOldSelf"] = True
        return entry

    def check(self, holds: bool, detail: str | None = None) -> None:
        """Raise the rule's message (or `detail`, the twin of message_expression) when it does not hold.

        This is the Python twin of the CEL rule; the model's validator calls it with the same condition.
        """
        if not holds:
            raise ValueError(detail or self.message)


def validations(*rules: Rule) -> dict[str, pydantic.JsonValue]:
    """`json_schema_extra` for a model or a field guarded by `rules`."""
    return {"x-kubernetes-validations": [dict(rule.schema()) for rule in rules]}



def defaulted(model: type[pydantic.BaseModel]) -> Any:
    """A field whose default is `model()`, and which the API server fills in as `{}` when it is
    absent, so that the defaults inside it show in the stored object too."""
    return pydantic.Field(default_factory=model, json_schema_extra={"default": {}})
