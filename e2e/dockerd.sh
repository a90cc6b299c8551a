#!/usr/bin/env bash
# A Docker engine for `make images` and the image tests, started only when none answers.
#
#   e2e/dockerd.sh up     # start dockerd unless `docker info` answers; idempotent
#   e2e/dockerd.sh down   # stop the dockerd that `up` started, and nothing else
#
# The engine listens on its unix socket only (no TCP port) and logs to $state/dockerd.log. It
# writes its pid to /run/modelrollout-dockerd.pid only when `up` started it, so `down`
# (`make system-down`, the CI harness) never stops an engine that a person or the system was
# already running. That file is outside $HOME: an engine started under one home (the README
# test's empty one) is still found, and stopped, from another.
set -euo pipefail
# dockerd and debootstrap live in sbin, which a user's PATH (or an `env -i` one) may lack.
export PATH=$PATH:/usr/sbin:/sbin
state=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/dockerd
socket=/var/run/docker.sock
pidfile=${MODELROLLOUT_DOCKERD_PIDFILE:-/run/modelrollout-dockerd.pid}
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo

answers() { $sudo docker -H "unix://$socket" info >/dev/null 2>&1; }

ours() {  # the pid in $pidfile, if it is still a dockerd
  [ -s "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

up() {
  if answers; then echo "docker engine answers on $socket"; return; fi
  command -v dockerd >/dev/null || { echo "dockerd is not installed (make system installs docker.io)" >&2; exit 1; }
  mkdir -p "$state"
  # Two `make system` at once (parallel test workers) start one engine: the second waits, then finds it.
  exec 9>"$state/up.lock"
  flock 9
  if answers; then echo "docker engine answers on $socket"; return; fi
  local started=$SECONDS
  # The default runtime is runc minus the capabilities the host cannot grant (see the file):
  # kind's --privileged nodes need it on hosts like this one. Copied, so the engine does not
  # depend on the checkout that started it.
  install -m 0755 "$(dirname "$0")/kind/bounded-runc" "$state/bounded-runc"
  # setsid: the engine outlives this shell and its make (a new session, its own process group).
  # It starts its own containerd as a child, which stops with it.
  # dockerd writes its own pid (not sudo's or setsid's) into $pidfile and removes it when it exits.
  # 9>&-: the engine must not inherit, and so hold for ever, the lock.
  $sudo setsid dockerd --host "unix://$socket" --pidfile "$pidfile" \
    --add-runtime "bounded-runc=$state/bounded-runc" --default-runtime bounded-runc >"$state/dockerd.log" 2>&1 < /dev/null 9>&- &
  local launched=$!
  until answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      echo "dockerd exited; the end of $state/dockerd.log:" >&2; tail -20 "$state/dockerd.log" >&2; exit 1
    fi
    [ $((SECONDS - started)) -lt 60 ] || { echo "dockerd did not answer within 60 s; see $state/dockerd.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "started dockerd (pid $(cat "$pidfile"), log $state/dockerd.log) in $((SECONDS - started)) s"
}

down() {
  local pid
  if ! pid=$(ours); then $sudo rm -f "$pidfile"; echo "no dockerd started by e2e/dockerd.sh"; return; fi
  $sudo kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 60 ]; do sleep 0.5; waited=$((waited + 1)); done
  kill -0 "$pid" 2>/dev/null && { echo "dockerd (pid $pid) still running after 30 s" >&2; exit 1; }
  $sudo rm -f "$pidfile"
  echo "stopped dockerd (pid $pid)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
