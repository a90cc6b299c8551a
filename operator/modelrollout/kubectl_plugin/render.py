"""Views of ModelDeployments for `kubectl modelrollout`: the list, the status and the history.

Each view takes parsed objects and returns a rich renderable; nothing here touches a terminal or
the cluster, so every view is tested as text at a given width (`text`). rich sizes the tables to
the terminal: long metric names and messages wrap inside their column instead of shifting rows.

Steps are numbered from 1, as the operator's messages count them ("step 2/4").
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Sequence

from rich import box, console, table, text

from modelrollout.api import labels, resources, spec, status, strategies

Renderable = console.RenderableType

_PHASE_STYLES = {
    status.Phase.SUCCEEDED: "green", status.Phase.ROLLED_BACK: "red", status.Phase.DEGRADED: "red",
    status.Phase.PAUSED: "yellow", status.Phase.PROGRESSING: "cyan", status.Phase.PROMOTING: "cyan",
}
_VERDICT_STYLES = {"Pass": "green", "Fail": "red", "Inconclusive": "yellow", "Error": "magenta"}


def age(at: datetime.datetime | None, now: datetime.datetime) -> str:
    """kubectl's short ages: 45s, 12m, 3h, 2d."""
    if at is None:
        return "-"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.001 <= abs(value) < 10000:
        return f"{value:.4g}"
    return f"{value:.3e}"


def phase_text(md_status: status.ModelDeploymentStatus) -> text.Text:
    phase = md_status.phase
    if phase is None:
        return text.Text("Unknown", style="dim")
    label = phase.value
    if md_status.pause_reason and phase is status.Phase.PAUSED:
        label += f" ({md_status.pause_reason.value})"
    return text.Text(label, style=_PHASE_STYLES.get(phase, ""))


def describe_step(step: strategies.Step) -> str:
    if isinstance(step, strategies.SetWeight):
        return f"setWeight {step.set_weight}%"
    if isinstance(step, strategies.Pause):
        return f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
    return f"analyze {step.analyze.duration}"


def step_label(md_spec: spec.ModelDeploymentSpec, md_status: status.ModelDeploymentStatus) -> str | None:
    """'2/4 analyze 40s' for the step in progress (1-based, as the operator's messages), or None."""
    if md_status.current_step is None or md_status.canary_revision is None:
        return None
    number_ = md_status.current_step + 1
    canary = md_spec.strategy.canary
    if canary is None or md_spec.strategy.type is not strategies.StrategyType.CANARY:
        return str(number_)
    if md_status.current_step >= len(canary.steps):
        return f"{len(canary.steps)}/{len(canary.steps)} done"
    return f"{number_}/{len(canary.steps)} {describe_step(canary.steps[md_status.current_step])}"


def step_lines(md_spec: spec.ModelDeploymentSpec, md_status: status.ModelDeploymentStatus) -> list[str]:
    """The canary steps, numbered from 1, with a marker: ✔ done, ▶ in progress, · to do."""
    canary = md_spec.strategy.canary
    if canary is None:
        return []
    current = md_status.current_step
    rolling = md_status.canary_revision is not None and current is not None
    out = []
    for index, step in enumerate(canary.steps):
        marker = " "
        if rolling and current is not None:
            marker = "✔" if index < current else "▶" if index == current else "·"
        out.append(f"{marker} {index + 1}. {describe_step(step)}")
    return out


def _grid() -> table.Table:
    grid = table.Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _table(*columns: str) -> table.Table:
    out = table.Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        out.add_column(column, overflow="fold")
    return out


def status_view(md: resources.ModelDeployment, now: datetime.datetime) -> Renderable:
    """Everything about one ModelDeployment: where it stands, the steps, pods, evidence, conditions."""
    md_spec, s = md.spec, md.status
    head = _grid()
    head.add_row("Name", f"{md.metadata.namespace}/{md.metadata.name}")
    head.add_row("Strategy", f"{md_spec.strategy.type.value} ({md_spec.traffic.provider.value})")
    head.add_row("Phase", phase_text(s))
    head.add_row("Message", s.message or "-")
    head.add_row("Model", f"{md_spec.model.name} {md_spec.model.version}")
    head.add_row("Stable", s.stable_revision or "-")
    head.add_row("Candidate", s.canary_revision or "-")
    weight = f"{s.canary_weight or 0}%" + (f", mirror {s.mirror_percent}%" if s.mirror_percent else "")
    head.add_row("Weight", weight)
    label = step_label(md_spec, s)
    if label is not None:
        head.add_row("Step", f"{label} (for {age(s.step_started_at, now)})")
    parts: list[Renderable] = [head]
    steps = step_lines(md_spec, s)
    if steps:
        parts += [text.Text("Steps", style="bold"), text.Text("\n".join("  " + line for line in steps))]
    if s.tracks is not None:
        pods = _table("TRACK", "READY", "REVISION")
        for track in labels.Track:
            replicas = s.tracks.of(track)
            if replicas is not None:
                pods.add_row(track.value, f"{replicas.ready}/{replicas.desired}", replicas.revision or "-")
        parts.append(pods)
    if s.analysis:
        parts.append(_evidence(s))
    if s.conditions:
        parts.append(_conditions(s))
    return console.Group(*parts)


def _evidence(s: status.ModelDeploymentStatus) -> Renderable:
    """A row per metric, then why each verdict, in words: long reasons wrap under the table
    rather than squeezing its columns."""
    evidence = _table("METRIC", "VERDICT", "STABLE", "CANARY", "P-VALUE", "SAMPLES")
    why = table.Table.grid(padding=(0, 1))
    why.add_column(no_wrap=True)
    why.add_column(overflow="fold")
    for result in s.analysis:
        verdict = text.Text(result.verdict.value, _VERDICT_STYLES.get(result.verdict.value, ""))
        samples = "-" if result.samples is None else str(result.samples)
        evidence.add_row(result.metric, verdict, number(result.stable), number(result.canary),
                         number(result.p_value), samples)
        if result.reason:
            why.add_row(f"  {result.metric}:", result.reason)
    return console.Group(evidence, why) if why.row_count else evidence


def _conditions(s: status.ModelDeploymentStatus) -> Renderable:
    """One row per condition; a message is shown once, not again where it repeats the status message."""
    out = _table("CONDITION", "STATUS", "REASON", "MESSAGE")
    for condition in s.conditions:
        message = "" if condition.message in ("", s.message) else condition.message
        out.add_row(condition.type, condition.status.value, condition.reason, message)
    return out


def list_view(items: Sequence[resources.ModelDeployment], now: datetime.datetime,
              all_namespaces: bool) -> Renderable:
    """`kubectl get mdep`'s columns and the step: one row per ModelDeployment."""
    if not items:
        return text.Text("No ModelDeployments found.")
    columns = ["NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "MODEL", "AGE"]
    out = _table(*(["NAMESPACE", *columns] if all_namespaces else columns))
    for md in items:
        s = md.status
        row: list[str | text.Text] = [
            md.metadata.name or "", md.spec.strategy.type.value, phase_text(s), step_label(md.spec, s) or "-",
            f"{s.canary_weight or 0}%", s.stable_revision or "-", s.canary_revision or "-",
            md.spec.model.version, age(md.metadata.creation_timestamp, now),
        ]
        out.add_row(*([md.metadata.namespace or "", *row] if all_namespaces else row))
    return out


def history_view(entries: Sequence[status.HistoryEntry], now: datetime.datetime) -> Renderable:
    if not entries:
        return text.Text("No rollouts yet.")
    out = _table("#", "REVISION", "MODEL", "OUTCOME", "AGE", "REASON")
    for index, entry in enumerate(entries, start=1):
        out.add_row(str(index), entry.revision, entry.model, entry.outcome.value, age(entry.at, now), entry.reason)
    return out


def progress_line(md: resources.ModelDeployment) -> str:
    """One line per change while `status --timeout` waits: 'Progressing  step 2/4 analyze 40s  weight 10%  …'."""
    s = md.status
    parts = [phase_text(s).plain]
    label = step_label(md.spec, s)
    if label is not None:
        parts.append(f"step {label}")
    parts.append(f"weight {s.canary_weight or 0}%")
    if s.message:
        parts.append(s.message)
    return "  ".join(parts)


def text_of(renderable: Renderable, width: int = 100) -> str:
    """The renderable as plain text, `width` columns wide (tests, logs, `make demo`)."""
    out = console.Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False,
                          legacy_windows=False, soft_wrap=False)
    out.print(renderable)
    file = out.file
    assert isinstance(file, io.StringIO)
    return "\n".join(line.rstrip() for line in file.getvalue().splitlines())
