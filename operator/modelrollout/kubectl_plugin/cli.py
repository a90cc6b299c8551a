"""`kubectl modelrollout`: watch and steer rollouts from the command line.

    kubectl modelrollout status NAME [-w]       the steps, weights, pods and evidence, live with -w
    kubectl modelrollout promote NAME [--full]  finish the current pause or analysis (--full: all steps)
    kubectl modelrollout abort|retry|pause|resume NAME
    kubectl modelrollout history NAME
    kubectl modelrollout undo NAME [--to-revision REV]

Commands are written as the `modelrollout.io/command` annotation, which the operator consumes
and acknowledges in status.lastCommand; GitOps tools leave annotations they did not write alone,
so self-heal cannot undo a promotion.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import uuid
from typing import Any

from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.api import commands, labels, resources
from modelrollout.kubectl_plugin import render

VERBS = {
    "promote": commands.Verb.PROMOTE, "abort": commands.Verb.ABORT, "retry": commands.Verb.RETRY,
    "pause": commands.Verb.PAUSE, "resume": commands.Verb.RESUME, "undo": commands.Verb.UNDO,
}


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    return os.environ.get("KUBECTL_PLUGINS_CURRENT_NAMESPACE") or "default"


def _fetch(client: kube.Kube, namespace: str, name: str) -> dict[str, Any]:
    body = client.get(kube.MODEL_DEPLOYMENT, namespace, name)
    if body is None:
        raise SystemExit(f"error: modeldeployment {namespace}/{name} not found")
    return body


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def show_status(client: kube.Kube, namespace: str, name: str, watch: bool, interval: float) -> int:
    while True:
        body = _fetch(client, namespace, name)
        md = resources.ModelDeployment.model_validate(body)
        lines = render.status_view(name, namespace, md.spec, md.status, _now())
        if watch and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")
        print("\n".join(lines), flush=True)
        if not watch:
            return 0
        if watch and not sys.stdout.isatty():
            print("---", flush=True)
        time.sleep(interval)


def send(client: kube.Kube, namespace: str, name: str, verb: commands.Verb, to_revision: str | None) -> int:
    body = _fetch(client, namespace, name)
    md = resources.ModelDeployment.model_validate(body)
    command = commands.Command(
        verb=verb, id=uuid.uuid4().hex[:12], to_revision=to_revision,
        revision=md.status.canary_revision if verb in (commands.Verb.PROMOTE, commands.Verb.PROMOTE_FULL) else None,
    )
    client.merge_patch(kube.MODEL_DEPLOYMENT, namespace, name,
                       {"metadata": {"annotations": {labels.COMMAND: commands.render(command)}}})
    print(f"modeldeployment {namespace}/{name}: {verb.value} requested (id {command.id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl modelrollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--namespace")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    # The same options after the verb, as kubectl users type them: `status NAME -n ml`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="verb", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        added = sub.add_parser(name, help=text, parents=[common])
        added.add_argument("name")
        return added

    status_parser = command("status", "the rollout's steps, weights, pods and evidence")
    status_parser.add_argument("-w", "--watch", action="store_true")
    status_parser.add_argument("--interval", type=float, default=2.0)
    command("history", "finished rollouts")
    command("promote", "finish the current pause or analysis step").add_argument(
        "--full", action="store_true", help="skip the remaining steps")
    for name in ("abort", "retry", "pause", "resume"):
        command(name, f"{name} the rollout")
    command("undo", "go back to the previous stable revision").add_argument("--to-revision")
    args = parser.parse_args(argv)
    namespace = _namespace(args)
    try:
        client = kube.Kube(kube.load_api_client(args.kubeconfig))
        if args.verb == "status":
            return show_status(client, namespace, args.name, args.watch, args.interval)
        if args.verb == "history":
            md = resources.ModelDeployment.model_validate(_fetch(client, namespace, args.name))
            print("\n".join(render.history_view(md.status.history, _now())))
            return 0
        verb = commands.Verb.PROMOTE_FULL if args.verb == "promote" and args.full else VERBS[args.verb]
        return send(client, namespace, args.name, verb, getattr(args, "to_revision", None))
    except errors.ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
