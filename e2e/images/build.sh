#!/usr/bin/env bash
# `make images`: the operator image (./Dockerfile) and the e2e model server's
# (e2e/modelserver/Dockerfile), built on the local Debian base, for machines that cannot pull.
#
#   e2e/images/build.sh     # tags modelrollout:dev, modelrollout-modelserver:dev and :<content hash>
#   e2e/images/build.sh --with-loadgen   # and modelrollout-e2e-loadgen:dev, for the kind provider
#
# Each image is keyed by a hash of what goes into it (its Dockerfile, the lock, its sources, the
# build helpers and the base's recipe) and skipped when an image with that key exists. The base
# (e2e/images/base.sh) is keyed by its recipe and its root filesystem kept under
# $MODELROLLOUT_CACHE/images (default ~/.cache/modelrollout/images), so a pruned Docker store
# imports it again in seconds instead of running debootstrap. Python packages are downloaded on
# the host into e2e/images/wheels/ (the build stages install from there, hash-checked, without
# reaching PyPI: here they cannot verify PyPI's certificate, as the host's trust store is not
# theirs). Every stage prints how long it took.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cache=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/images
docker=${DOCKER:-docker}
mkdir -p "$cache"
# One build at a time on this machine (parallel test workers each ask for the images): a second
# caller waits, then finds them built.
exec 9>"$cache/build.lock"
flock 9

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
took() { log "$1 took $((SECONDS - $2)) s"; }

# A short hash of files' names and contents (folders walked; bytecode caches left out).
content_hash() {
  find "$@" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-12
}
have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

base_key=$(content_hash e2e/images/base.sh)
base_image=modelrollout-base:bookworm-$base_key
helpers=(requirements.lock .dockerignore e2e/images/lock_subset.py e2e/images/install-locked.sh)
# A new base is a new image too.
operator_key=$(echo "$base_key $(content_hash Dockerfile pyproject.toml "${helpers[@]}" operator/modelrollout)" \
  | sha256sum | cut -c1-12)
modelserver_key=$(echo "$base_key $(content_hash e2e/modelserver e2e/__init__.py "${helpers[@]}")" \
  | sha256sum | cut -c1-12)
loadgen_key=$(echo "$base_key $(content_hash e2e/kind/loadgen.Dockerfile e2e/__init__.py e2e/cluster/__init__.py \
  e2e/cluster/pki.py e2e/cluster/processes.py e2e/loadgen e2e/modelserver e2e/podrunner "${helpers[@]}")" | sha256sum | cut -c1-12)

base() {
  local started=$SECONDS tarball=$cache/base-$base_key.tar.gz
  if have_image "$base_image"; then log "base $base_image present"; return; fi
  if [ ! -s "$tarball" ]; then
    log "base: debootstrap bookworm with python3 (cold: about a minute)"
    bash e2e/images/base.sh "$tarball"
  fi
  "$docker" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tarball" "$base_image" >/dev/null
  took "base $base_image" "$started"
}

# The wheels of both images for the base's Python (3.11, glibc 2.36, this machine's architecture),
# whatever Python runs this script. pip keeps files it already has; a new lock starts afresh.
wheels() {
  local started=$SECONDS dir=e2e/images/wheels lock_key
  lock_key=$(content_hash requirements.lock pyproject.toml)
  if [ "$(cat "$dir/.downloaded" 2>/dev/null)" = "$lock_key" ]; then log "wheels present"; return; fi
  find "$dir" -name '*.whl' -delete
  local pip=(python3 -m pip) platforms=() arch minor
  [ -x .venv/bin/pip ] && pip=(.venv/bin/pip)
  arch=$(uname -m)
  for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  platforms+=(--platform "manylinux2014_$arch" --platform "linux_$arch")
  # The operator's roots and the model server's, as its Dockerfile names them.
  local modelserver_roots
  modelserver_roots=$(sed -nE 's#.*lock_subset\.py /src/requirements\.lock ([^>]+) >.*#\1#p' e2e/modelserver/Dockerfile)
  # shellcheck disable=SC2086  # the roots are words
  python3 e2e/images/lock_subset.py requirements.lock --pyproject pyproject.toml $modelserver_roots > "$cache/wheels.txt"
  "${pip[@]}" download -q --disable-pip-version-check --no-deps --require-hashes -r "$cache/wheels.txt" -d "$dir" \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 "${platforms[@]}"
  echo "$lock_key" > "$dir/.downloaded"
  took "wheels ($(find "$dir" -name '*.whl' | wc -l) files, $(du -sh "$dir" | cut -f1))" "$started"
}

# build NAME KEY DOCKERFILE: NAME:KEY and NAME:dev, unless NAME:KEY exists.
build() {
  local name=$1 key=$2 dockerfile=$3 started=$SECONDS
  if have_image "$name:$key"; then
    "$docker" tag "$name:$key" "$name:dev"
    log "$name:$key present (tagged $name:dev)"
    return
  fi
  base
  wheels
  started=$SECONDS  # the build alone: base and wheels printed their own times
  log "building $name:$key (log: $cache/$name.log)"
  "$docker" build -f "$dockerfile" --build-arg "BASE=$base_image" -t "$name:$key" -t "$name:dev" . \
    > "$cache/$name.log" 2>&1 || { tail -30 "$cache/$name.log" >&2; log "building $name failed"; exit 1; }
  took "$name:$key ($(( $("$docker" image inspect -f '{{.Size}}' "$name:$key") / 1000000 )) MB)" "$started"
}

total=$SECONDS
build modelrollout "$operator_key" Dockerfile
build modelrollout-modelserver "$modelserver_key" e2e/modelserver/Dockerfile
# The kind provider's load generator (e2e/kind/world.py), only when asked.
[ "${1:-}" = --with-loadgen ] && build modelrollout-e2e-loadgen "$loadgen_key" e2e/kind/loadgen.Dockerfile
took "make images" "$total"
