# Sourced by the build scripts (e2e/cluster, e2e/realnode, e2e/kind): builds commands of
# k8s.io/kubernetes at $K8S_VERSION with the version stamped in, as a release does.
#
#   k8s_build WORKDIR BIN_DIR TAGS COMMAND...    # e.g. k8s_build "$w" "$bin" selinux,notest kubelet
#
# A throwaway wrapper module in WORKDIR: k8s.io/kubernetes pins its staging modules at v0.0.0 with
# local replaces, which are ignored in a dependency; replace each with its published v0.N.M twin.
k8s_build() {
  local w=$1 out=$2 tags=$3; shift 3
  rm -rf "$w" && mkdir -p "$w"
  (
    cd "$w"
    go mod init "e2e.local/k8sbuild" >/dev/null 2>&1
    local gomod staging minor m c tools=() packages=()
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    staging="v0.${K8S_VERSION#v1.}"
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    for m in $(sed -nE 's#^[[:space:]]*(k8s\.io/[^ ]+) => \./staging/src/.*#\1#p' "$gomod"); do
      go mod edit -replace="$m=$m@$staging"
    done
    if grep -q '^godebug' "$gomod"; then
      go mod edit -godebug="$(sed -nE 's/^godebug (.*)/\1/p' "$gomod")"
    fi
    # each path pinned: an unversioned `go get` would upgrade k8s.io/kubernetes to the newest release
    for c in "$@"; do
      tools+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION")
      packages+=("k8s.io/kubernetes/cmd/$c")
    done
    go get -tool "${tools[@]}" 2>&1 | grep -v '^go: downloading' >&2 || true
    grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod || { echo "go get did not pin $K8S_VERSION" >&2; exit 1; }
    local ldf="-s -w" p now
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf="$ldf -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=$now"
    done
    go build -trimpath ${tags:+-tags=$tags} -ldflags "$ldf" -o "$out/" "${packages[@]}"
  )
}
