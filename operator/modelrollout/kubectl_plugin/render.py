"""Pure text views of a ModelDeployment for `kubectl modelrollout`: status and history.

Takes the parsed object, returns lines; no terminal or cluster calls, so every view is tested
as strings.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from modelrollout.api import labels, spec, status, strategies


def _age(at: datetime.datetime | None, now: datetime.datetime) -> str:
    if at is None:
        return "-"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.001 <= abs(value) < 10000:
        return f"{value:.4g}"
    return f"{value:.3e}"


def step_lines(md_spec: spec.ModelDeploymentSpec, md_status: status.ModelDeploymentStatus) -> list[str]:
    """The canary steps with a marker on the current one (done, current, to do)."""
    canary = md_spec.strategy.canary
    if canary is None:
        return []
    current = md_status.current_step
    rolling = md_status.canary_revision is not None
    out = []
    for index, step in enumerate(canary.steps):
        if isinstance(step, strategies.SetWeight):
            text = f"setWeight {step.set_weight}%"
        elif isinstance(step, strategies.Pause):
            text = f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
        else:
            text = f"analyze {step.analyze.duration}"
        if not rolling or current is None:
            marker = " "
        elif index < current:
            marker = "✔"
        elif index == current:
            marker = "▶"
        else:
            marker = "·"
        out.append(f"  {marker} {index}: {text}")
    return out


def status_view(body_name: str, namespace: str, md_spec: spec.ModelDeploymentSpec,
                md_status: status.ModelDeploymentStatus, now: datetime.datetime) -> list[str]:
    s = md_status
    lines = [
        f"Name:        {body_name}",
        f"Namespace:   {namespace}",
        f"Strategy:    {md_spec.strategy.type.value} ({md_spec.traffic.provider.value})",
        f"Phase:       {s.phase.value if s.phase else 'Unknown'}"
        + (f" ({s.pause_reason.value})" if s.pause_reason and s.phase == status.Phase.PAUSED else ""),
        f"Message:     {s.message or '-'}",
        f"Model:       {md_spec.model.name} {md_spec.model.version}",
        f"Stable:      {s.stable_revision or '-'}",
        f"Candidate:   {s.canary_revision or '-'}",
        f"Weight:      {s.canary_weight or 0}%" + (f"   mirror {s.mirror_percent}%" if s.mirror_percent else ""),
    ]
    if s.current_step is not None and s.canary_revision:
        lines.append(f"Step:        {s.current_step} (for {_age(s.step_started_at, now)})")
    steps = step_lines(md_spec, s)
    if steps:
        lines += ["Steps:", *steps]
    if s.replicas is not None:
        lines.append("Pods:")
        for track in labels.Track:
            replicas = s.replicas.of(track)
            if replicas is not None:
                lines.append(f"  {track.value:<8} {replicas.ready}/{replicas.desired} ready"
                             f"  revision {replicas.revision or '-'}")
    if s.analysis:
        lines.append("Analysis:")
        lines.append(f"  {'METRIC':<20} {'VERDICT':<13} {'STABLE':>10} {'CANARY':>10} {'P-VALUE':>9} {'SAMPLES':>9}")
        for result in s.analysis:
            lines.append(
                f"  {result.metric:<20} {result.verdict.value:<13} {_num(result.stable):>10} {_num(result.canary):>10}"
                f" {_num(result.p_value):>9} {result.samples if result.samples is not None else '-':>9}")
            if result.reason:
                lines.append(f"      {result.reason}")
    if s.conditions:
        lines.append("Conditions:")
        for condition in s.conditions:
            lines.append(f"  {condition.type:<12} {condition.status.value:<7} {condition.reason}: {condition.message}")
    return lines


def history_view(entries: Sequence[status.HistoryEntry], now: datetime.datetime) -> list[str]:
    if not entries:
        return ["No rollouts yet."]
    lines = [f"{'#':>3}  {'REVISION':<12} {'MODEL':<12} {'OUTCOME':<11} {'AGE':>5}  REASON"]
    for number, entry in enumerate(entries, start=1):
        lines.append(f"{number:>3}  {entry.revision:<12} {entry.model:<12} {entry.outcome.value:<11} "
                     f"{_age(entry.at, now):>5}  {entry.reason}")
    return lines
