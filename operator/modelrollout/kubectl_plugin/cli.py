"""`kubectl modelrollout`: watch and steer rollouts from the command line.

    kubectl modelrollout list [-A]                    phase, step, weight and revisions of each
    kubectl modelrollout status NAME [-w] [--timeout 10m]
                                                      steps, weights, pods and evidence; -w follows
                                                      it live; --timeout waits for the rollout's end
    kubectl modelrollout history NAME                 finished rollouts
    kubectl modelrollout promote NAME [--full]        finish the current pause or analysis (--full: all steps)
    kubectl modelrollout abort|retry|pause|resume NAME
    kubectl modelrollout undo NAME [--to-revision REV]
    kubectl modelrollout version

Options, before or after the verb, as kubectl takes them: -n/--namespace, --context,
--kubeconfig, -o json|yaml (list, status, history).

Exit codes: 0 done (status --timeout: Succeeded; a command: accepted); 1 failed (RolledBack,
Degraded or stalled; a command refused; any error, printed on one line); 2 timed out (the
rollout did not end, or the operator did not acknowledge the command, within --timeout).

Commands are written as the `modelrollout.io/command` annotation, which the operator consumes
and acknowledges in status.lastCommand; GitOps tools leave annotations they did not write alone,
so self-heal cannot undo a promotion. The plugin waits for that acknowledgement (--timeout,
default 30s; 0: do not wait), so a script can give commands one after another.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pydantic
import yaml
from rich import console, live

import modelrollout
from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.api import commands, durations, labels, resources
from modelrollout.kubectl_plugin import connecting, outcomes, render, watching

VERBS = {
    "promote": commands.Verb.PROMOTE, "abort": commands.Verb.ABORT, "retry": commands.Verb.RETRY,
    "pause": commands.Verb.PAUSE, "resume": commands.Verb.RESUME, "undo": commands.Verb.UNDO,
}
COMMAND_TIMEOUT = "30s"
CONNECT_TIMEOUT_S = 15  # per request: an unreachable server is reported, not waited for


class Failed(Exception):
    """A one-line error for the user; the exit code is 1."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parse(body: dict[str, Any]) -> resources.ModelDeployment:
    try:
        return resources.ModelDeployment.model_validate(body)
    except pydantic.ValidationError as error:
        name = body.get("metadata", {}).get("name")
        raise Failed(f"modeldeployment {name} cannot be read by this plugin version "
                     f"({modelrollout.__version__}): {error.errors()[0]['msg']}") from None


class Session:
    """One command's cluster, namespace and output."""

    def __init__(self, target: connecting.Target, out: console.Console) -> None:
        self.target = target
        self.client = kube.Kube(target.api_client, retry_delays=(), timeout=CONNECT_TIMEOUT_S)
        self.out = out

    @property
    def namespace(self) -> str:
        return self.target.namespace

    def fetch(self, name: str) -> dict[str, Any]:
        body = self.client.get(kube.MODEL_DEPLOYMENT, self.namespace, name)
        if body is None:
            self.require_crd()
            raise Failed(f"modeldeployment {self.namespace}/{name} not found")
        return body

    def require_crd(self) -> None:
        if not self.client.served(kube.MODEL_DEPLOYMENT):
            raise Failed(f"the cluster at {self.target.server} does not serve {resources.CRD_NAME}: install the CRD "
                         "(kubectl apply --server-side -f crds/modeldeployments.yaml)")

    def follow(self, name: str, deadline: float | None) -> Iterator[resources.ModelDeployment]:
        for body in watching.follow(self.target.api_client, self.namespace, name, deadline):
            yield _parse(body)

    def show(self, view: render.Renderable) -> None:
        """On a terminal with rich's colours; into a pipe as plain lines without trailing blanks."""
        if self.out.is_terminal:
            self.out.print(view)
        else:
            print(render.text_of(view, self.out.width), flush=True)

    def emit(self, data: object, output: str) -> None:
        if output == "json":
            print(json.dumps(data, indent=2, sort_keys=False, default=str))
        else:
            print(yaml.safe_dump(data, sort_keys=False).rstrip())


def _timeout(value: str) -> float:
    if value == "0":
        return 0.0
    try:
        return durations.parse_duration(value).total_seconds()
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def list_rollouts(session: Session, all_namespaces: bool, output: str | None) -> int:
    found = session.client.list(kube.MODEL_DEPLOYMENT, None if all_namespaces else session.namespace)
    if not found:
        session.require_crd()
    found.sort(key=lambda b: (b["metadata"].get("namespace", ""), b["metadata"]["name"]))
    if output:
        session.emit({"apiVersion": "v1", "kind": "List", "items": found}, output)
        return 0
    session.show(render.list_view([_parse(b) for b in found], _now(), all_namespaces))
    return 0


def show_status(session: Session, name: str, follow: bool, timeout: float | None, output: str | None) -> int:
    if not follow and timeout is None:
        body = session.fetch(name)
        if output:
            session.emit(body, output)
        else:
            session.show(render.status_view(_parse(body), _now()))
        return 0
    deadline = None if timeout is None else time.monotonic() + timeout
    if follow and output is None and session.out.is_terminal:
        return _follow_live(session, name, deadline, until_done=timeout is not None)
    last_line = ""
    md: resources.ModelDeployment | None = None
    for md in session.follow(name, deadline):
        done = outcomes.finished(md) if timeout is not None else None
        if follow and output is None:
            session.show(render.status_view(md, _now()))
            print("---", flush=True)
        elif output is None:
            line = render.progress_line(md)
            if line != last_line:
                print(f"{datetime.datetime.now():%H:%M:%S}  {line}", flush=True)
                last_line = line
        if done is not None:
            if output:
                session.emit(md.model_dump(mode="json", by_alias=True, exclude_none=True), output)
            return int(done)
    if md is None:
        raise Failed(f"modeldeployment {session.namespace}/{name} not found")
    print(f"timed out after {timeout or 0:.0f}s: {render.progress_line(md)}", file=sys.stderr)
    return int(outcomes.Exit.TIMEOUT)


def _follow_live(session: Session, name: str, deadline: float | None, until_done: bool) -> int:
    with live.Live(console=session.out, auto_refresh=False, transient=False) as view:
        for md in session.follow(name, deadline):
            view.update(render.status_view(md, _now()), refresh=True)
            done = outcomes.finished(md)
            if until_done and done is not None:
                return int(done)
    return int(outcomes.Exit.TIMEOUT)


def show_history(session: Session, name: str, output: str | None) -> int:
    md = _parse(session.fetch(name))
    if output:
        session.emit([entry.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"snapshot"})
                      for entry in md.status.history], output)
    else:
        session.show(render.history_view(md.status.history, _now()))
    return 0


def send(session: Session, name: str, verb: commands.Verb, to_revision: str | None, timeout: float) -> int:
    md = _parse(session.fetch(name))
    command = commands.Command(
        verb=verb, id=uuid.uuid4().hex[:12], to_revision=to_revision,
        revision=md.status.canary_revision if verb in (commands.Verb.PROMOTE, commands.Verb.PROMOTE_FULL) else None,
    )
    session.client.merge_patch(kube.MODEL_DEPLOYMENT, session.namespace, name,
                               {"metadata": {"annotations": {labels.COMMAND: commands.render(command)}}})
    what = f"modeldeployment {session.namespace}/{name}: {verb.value}"
    if timeout <= 0:
        print(f"{what} requested (id {command.id})")
        return 0
    for seen in session.follow(name, time.monotonic() + timeout):
        ack = seen.status.last_command
        if ack is not None and ack.id == command.id:
            print(f"{what} {'accepted' if ack.accepted else 'refused'}: {ack.message}")
            return 0 if ack.accepted else 1
    print(f"{what} requested (id {command.id}), not acknowledged within {timeout:.0f}s: "
          "is the operator running? It handles the command when it comes.", file=sys.stderr)
    return int(outcomes.Exit.TIMEOUT)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl modelrollout", description=(__doc__ or "").split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]))

    def options(into: argparse.ArgumentParser, default: object) -> None:
        into.add_argument("-n", "--namespace", default=default, help="default: the kubeconfig context's")
        into.add_argument("--context", default=default, help="a kubeconfig context; default: the current one")
        into.add_argument("--kubeconfig", default=default, help="default: $KUBECONFIG, else ~/.kube/config")

    options(top, None)
    # The same options after the verb, as kubectl users type them: `status NAME -n ml`.
    common = argparse.ArgumentParser(add_help=False)
    options(common, argparse.SUPPRESS)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=["json", "yaml"])
    sub = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        added = sub.add_parser(name, help=text, description=text, parents=[common, *parents])
        added.add_argument("name")
        return added

    listing = sub.add_parser("list", help="every ModelDeployment in the namespace", parents=[common, output])
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    status_parser = verb("status", "the rollout's steps, weights, pods and evidence", output)
    status_parser.add_argument("-w", "--watch", action="store_true", help="follow it live (a watch, not polling)")
    status_parser.add_argument("--timeout", type=_timeout, default=None,
                               help="wait until the rollout ends: exit 0 Succeeded, 1 RolledBack/Degraded, 2 timeout")
    verb("history", "finished rollouts", output)
    command_options = argparse.ArgumentParser(add_help=False)
    command_options.add_argument("--timeout", type=_timeout, default=_timeout(COMMAND_TIMEOUT),
                                 help=f"wait for the operator's answer (default {COMMAND_TIMEOUT}; 0: no wait)")
    verb("promote", "finish the current pause or analysis step", command_options).add_argument(
        "--full", action="store_true", help="skip the remaining steps")
    for name in ("abort", "retry", "pause", "resume"):
        verb(name, f"{name} the rollout", command_options)
    verb("undo", "go back to the previous stable revision", command_options).add_argument("--to-revision")
    sub.add_parser("version", help="the plugin's version")
    return top


def run(args: argparse.Namespace, out: console.Console) -> int:
    if args.verb == "version":
        print(f"kubectl-modelrollout {modelrollout.__version__}")
        return 0
    target = connecting.connect(args.kubeconfig, args.context, args.namespace)
    try:
        return _dispatch(args, Session(target, out))
    except errors.ClusterUnavailable as error:
        raise Failed(f"the cluster at {target.server} did not answer: {error}") from None


def _dispatch(args: argparse.Namespace, session: Session) -> int:
    output = getattr(args, "output", None)
    if args.verb == "list":
        return list_rollouts(session, args.all_namespaces, output)
    if args.verb == "status":
        return show_status(session, args.name, args.watch, args.timeout, output)
    if args.verb == "history":
        return show_history(session, args.name, output)
    verb = commands.Verb.PROMOTE_FULL if args.verb == "promote" and args.full else VERBS[args.verb]
    return send(session, args.name, verb, getattr(args, "to_revision", None), args.timeout)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args, console.Console(highlight=False))
    except (Failed, connecting.ConnectError) as error:
        print(f"error: {error}", file=sys.stderr)
    except errors.ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
