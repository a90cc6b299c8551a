"""Query templates: rendering, and the batched form that reads many ModelDeployments at once."""

from __future__ import annotations

import pytest

from modelrollout import errors
from modelrollout.adapters.metrics import presets, queries
from modelrollout.api import analyses

SELECT = 'namespace="{{namespace}}",modeldeployment="{{name}}",revision="{{revision}}"'
BATCH = 'namespace=~"{{namespaces}}",modeldeployment=~"{{names}}",revision=~"{{revisions}}"'


def test_render_substitutes_and_names_an_unknown_placeholder() -> None:
    context = queries.Context("ml", "scorer", "canary", "7b21aa", "60s")
    assert queries.render('x{namespace="{{namespace}}"}[{{interval}}]', context) == 'x{namespace="ml"}[60s]'
    with pytest.raises(errors.SpecError, match=r"\{\{pod\}\}"):
        queries.render('x{pod="{{pod}}"}', context)


@pytest.mark.parametrize("template, expected", [
    (f"sum by (pod) (x_total{{{SELECT}}})",
     f"sum by (namespace, modeldeployment, revision, pod) (x_total{{{BATCH}}})"),
    (f'max by (pod) (sum by (pod, track) (x_total{{{SELECT},code=~"5.."}}))',
     f"max by (namespace, modeldeployment, revision, pod) "
     f'(sum by (namespace, modeldeployment, revision, pod, track) (x_total{{{BATCH},code=~"5.."}}))'),
    (f"sum by (pod, le) (x_bucket{{{SELECT}}})",
     f"sum by (namespace, modeldeployment, revision, pod, le) (x_bucket{{{BATCH}}})"),
    (f"x_total{{{SELECT}}}", f"x_total{{{BATCH}}}"),  # no aggregation: every label is kept
    (f"sum by (revision, pod) (x_total{{{SELECT}}})",
     f"sum by (namespace, modeldeployment, revision, pod) (x_total{{{BATCH}}})"),
], ids=["sum-by-pod", "preset-form", "histogram", "raw-selector", "owner-label-already-there"])
def test_a_template_that_keeps_the_pod_is_batched(template: str, expected: str) -> None:
    assert queries.batched(template) == expected


@pytest.mark.parametrize("template", [
    f"sum(x_total{{{SELECT}}})",                                       # the pod (and the owner) is lost
    f"sum by (le) (x_bucket{{{SELECT}}})",
    f"sum(x_total{{{SELECT}}}) by (pod)",                              # postfix grouping: not rewritten
    'sum by (pod) (x_total{namespace="{{namespace}}",modeldeployment="{{name}}"})',  # revisions not told apart
    f'sum by (pod) (x_total{{{SELECT},track="{{{{track}}}}"}})',
    f"sum by (pod) (x_total{{{SELECT}}}) / on (pod) sum by (pod) (y_total{{{SELECT}}})",
    'sum by (pod) (x_total{namespace="{{namespace}}",modeldeployment=~"{{name}}.*",revision="{{revision}}"})',
], ids=["sum", "by-le", "postfix", "no-revision", "track", "vector-matching", "name-regex"])
def test_a_template_that_cannot_tell_owners_apart_is_not_batched(template: str) -> None:
    assert queries.batched(template) is None


def test_every_preset_count_and_histogram_is_batched_and_reads_no_extrapolation() -> None:
    for preset in analyses.Preset:
        for metric in presets.PRESETS[preset].values():
            if metric.kind is analyses.MetricKind.GAUGE:
                continue
            for template in (metric.query, metric.exposure or metric.query):
                assert analyses.EXTRAPOLATING.search(template) is None, template
                assert "{{interval}}" not in template, template
                assert queries.batched(template) is not None, template


def test_a_batch_is_rendered_for_its_owners_only_with_dots_escaped() -> None:
    template = queries.batched(f"sum by (pod) (x_total{{{SELECT}}})")
    assert template is not None
    rendered = queries.render_batch(template, [("ml", "b.v2"), ("ml", "a"), ("team", "a")], ["r2", "r1"])
    assert 'namespace=~"ml|team"' in rendered
    assert 'modeldeployment=~"a|b\\\\.v2"' in rendered  # PromQL unescapes \\. to the regex \.
    assert 'revision=~"r1|r2"' in rendered
    assert "{{" not in rendered
