"""One daemon per ModelDeployment drives its rollout, one tick at a time.

A tick reads the object, observes the cluster (and, when asked, the metrics and the smoke
test), asks the core what to do, applies that in a safe order, and writes status and Events.
Between ticks the daemon sleeps until the core's requeue time, or until the object's spec or
command annotation changes, whichever comes first. All progress lives in status, so a
restarted operator resumes where it stopped.

Only the leader ticks (`runtime.leadership`): a follower's daemon parks, forgets what an earlier
term asked, and resumes from status when its replica takes the Lease. The status write carries the
resourceVersion the decision was based on: a 409 means the object changed under the tick, which
then starts over from fresh state; a lost Lease stops it before its next write. Neither aborts,
rolls back or touches status.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from typing import Any, cast

import kopf
import pydantic

from modelrollout import errors, structured_logs
from modelrollout.adapters import telemetry
from modelrollout.adapters.cluster import kube
from modelrollout.adapters.notify import webhook
from modelrollout.api import labels, resources
from modelrollout.api import status as api_status
from modelrollout.core import decision, invalid, observation, progression
from modelrollout.handlers import startup
from modelrollout.runtime import applying, notifying, observing, shared, slots

RETRY_AFTER_S = 5.0
CONFLICT_RETRY_S = 0.2  # decide again soon, once the newer object is there to read


JITTER_S = 10.0
"""After a start, the first ticks of objects already rolled out are spread over this many seconds."""


@kopf.on.event("modelrollout.io", "v1alpha1", "modeldeployments", labels={labels.IGNORE: kopf.ABSENT})
async def wake_on_change(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A changed spec or command annotation wakes the daemon at once (status writes do not);
    a deleted object's memory and metrics go."""
    runtime = startup.runtime_of(memo)
    meta = body.get("metadata", {})
    uid, namespace, name = meta.get("uid", ""), meta.get("namespace", ""), meta.get("name", "")
    if type == "DELETED":
        runtime.slots.forget(uid)
        telemetry.forget(namespace, name)
        return
    slot = runtime.slots.get(uid, namespace, name)
    key = (meta.get("generation"), (meta.get("annotations") or {}).get(labels.COMMAND))
    if slot.seen != key:
        slot.seen = key
        slot.wakeup.set()


@kopf.daemon("modelrollout.io", "v1alpha1", "modeldeployments", id="progression", cancellation_timeout=10.0,
             labels={labels.IGNORE: kopf.ABSENT})
async def progress(name: str, namespace: str | None, uid: str, body: kopf.Body, memo: kopf.Memo,
                   stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any) -> None:
    assert namespace is not None  # ModelDeployments are namespaced
    runtime = startup.runtime_of(memo)
    slot = runtime.slots.get(uid, namespace, name)
    slot.loop = asyncio.get_running_loop()
    structured_logs.CURRENT.set(structured_logs.Subject(namespace, name))
    if runtime.cache is not None:
        await asyncio.to_thread(runtime.cache.wait_synced)
    await stopped.wait(_first_delay(runtime, body))
    while not stopped:
        if not runtime.may_act():  # a follower: park until this replica leads, then start from status
            slot.asked, slot.written = slots.Asked(), None
            assert runtime.leadership is not None
            await runtime.leadership.next_turn(timeout=1.0)
            continue
        slot.wakeup.clear()
        try:
            with telemetry.TICK_SECONDS.time():
                delay = await tick(runtime, slot, slot.freshest(dict(body)), logger)
            runtime.slots.mark_ticked(slot)
        except errors.Conflict as error:
            logger.info("the object changed under this tick, deciding again: %s", error)
            delay = CONFLICT_RETRY_S
        except errors.NotLeader as error:
            logger.info("stopped before writing: %s", error)
            continue
        except errors.ClusterUnavailable as error:
            logger.warning("tick interrupted, retrying in %.0f s: %s", RETRY_AFTER_S, error)
            delay = RETRY_AFTER_S
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one tick must not stop this rollout's daemon for long
            logger.exception("tick failed, retrying in %.0f s", RETRY_AFTER_S)
            delay = RETRY_AFTER_S
        waiters = [asyncio.ensure_future(slot.wakeup.wait()), asyncio.ensure_future(stopped.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _first_delay(runtime: shared.Runtime, body: kopf.Body) -> float:
    """A new object ticks at once; one already rolled out, met in the first minute after a start,
    waits a random part of JITTER_S, so that a restart does not tick every object in step."""
    settled = bool(body.get("status", {}).get("observedGeneration"))
    return random.uniform(0, JITTER_S) if settled and time.monotonic() - runtime.started < 60 else 0.0


async def tick(runtime: shared.Runtime, slot: slots.Slot, body: dict[str, Any], logger: kopf.Logger) -> float:
    """One step of the rollout from the body kopf holds; returns the seconds until the next tick at the latest."""
    idle = runtime.settings.duration(runtime.settings.idle_interval).total_seconds()
    namespace, name, asked = slot.namespace, slot.name, slot.asked
    if body.get("metadata", {}).get("deletionTimestamp"):
        return idle
    based_on = body["metadata"].get("resourceVersion")  # every status write is fenced by it
    now = datetime.datetime.now(datetime.UTC)
    try:
        md = resources.ModelDeployment.model_validate(body)
    except pydantic.ValidationError as error:
        generation = body.get("metadata", {}).get("generation")
        wanted = invalid.status(body.get("status"), generation, str(error), now)
        if wanted != body.get("status"):
            await _write_status(runtime, slot, wanted, based_on)
        return idle
    if asked.analysis is None:  # after a restart: the window the status implies
        asked.analysis = progression.window(md.spec, md.status, now)
    structured_logs.CURRENT.set(structured_logs.Subject(
        namespace, name, md.status.canary_revision or md.status.stable_revision))
    outward = asked.analysis is not None or asked.smoke_test is not None
    seen, revisions = await runtime.in_thread(outward, observing.observe, runtime, md, asked, now)
    plan = progression.decide(md.spec, md.status, seen)
    try:
        await asyncio.to_thread(applying.apply, runtime, md, plan, revisions)
        asked.spec_problem = None
    except errors.ClusterRejected as error:
        asked.spec_problem = f"the API server refused an object built from the spec: {error}"
        logger.error("%s", asked.spec_problem)
        return RETRY_AFTER_S
    except errors.SpecError as error:  # e.g. a route the provider cannot express; the next tick says Degraded
        asked.spec_problem = str(error)
        logger.error("%s", asked.spec_problem)
        return RETRY_AFTER_S
    wanted = applying.status_patch(plan, name)["status"]
    if wanted != applying.status_patch_of(md.status, name)["status"]:  # unchanged: no write
        await _write_status(runtime, slot, wanted, based_on)
    record(md, seen, plan)
    if runtime.leadership is not None:  # Events and webhooks only from the replica that wrote the status
        runtime.leadership.gate()
    subject = kopf.Body(cast(kopf.RawBody, body))
    for event in plan.events:
        kopf.event(subject, type=event.type.value, reason=event.reason, message=event.message[:1024])
    try:
        for receiver, notifications in await asyncio.to_thread(notifying.prepare, runtime, md, plan, now):
            receiver.send(notifications)
    except errors.SpecError as error:  # a Secret deleted since the check: the rollout goes on
        logger.warning("notifications not sent: %s", error)
    if runtime.webhook is not None and plan.events:
        revision = plan.status.canary_revision or plan.status.stable_revision
        runtime.webhook.send([webhook.Notification(namespace, name, revision, e.type.value, e.reason, e.message, now)
                              for e in plan.events])
    asked.smoke_test, asked.analysis = plan.smoke_test, plan.analysis
    return _seconds(plan.requeue_after, idle)


def record(md: resources.ModelDeployment, seen: observation.Observation, plan: decision.Decision) -> None:
    """The operator's own metrics for one tick: weight, phase, verdicts, step durations, rollbacks."""
    namespace, name = md.metadata.namespace or "", md.metadata.name or ""
    before, after = md.status, plan.status
    telemetry.CANARY_WEIGHT.labels(namespace, name).set(after.canary_weight or 0)
    telemetry.set_phase(namespace, name, after.phase.value if after.phase else None)
    if seen.evidence is not None:
        for result in seen.evidence.metrics:
            telemetry.VERDICTS.labels(namespace, name, result.metric, result.verdict.value).inc()
    moved = (before.current_step, before.canary_revision) != (after.current_step, after.canary_revision)
    if moved and before.step_started_at is not None and before.canary_revision is not None:
        seconds = (seen.now - before.step_started_at).total_seconds()
        telemetry.STEP_DURATION.labels(md.spec.strategy.type.value).observe(max(0.0, seconds))
    if after.phase is api_status.Phase.ROLLED_BACK and before.phase is not api_status.Phase.ROLLED_BACK:
        degraded = after.condition(api_status.ConditionType.DEGRADED)
        telemetry.ROLLBACKS.labels(namespace, name, degraded.reason if degraded else "Unknown").inc()


async def _write_status(runtime: shared.Runtime, slot: slots.Slot, status: dict[str, Any],
                        based_on: str | None) -> None:
    """Fenced: a 409 (errors.Conflict) if the object is no longer at resourceVersion `based_on`."""
    slot.written = await asyncio.to_thread(runtime.kube.merge_patch_status, kube.MODEL_DEPLOYMENT,
                                           slot.namespace, slot.name, status, based_on)


def _seconds(after: datetime.timedelta, idle: float) -> float:
    return max(0.5, min(idle, after.total_seconds()))

