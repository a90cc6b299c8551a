#!/bin/sh
# Installs a hash-pinned requirements file into /opt/venv, in an image's build stage:
#   install-locked.sh REQUIREMENTS
# From /wheels alone when it holds wheels (downloaded on the host by e2e/images/build.sh, for
# builds that cannot reach PyPI), else from PyPI. Either way every file is checked against the
# lock's hashes and only wheels are taken (nothing is compiled in the image).
set -eu
python3 -m venv /opt/venv
if ls /wheels/*.whl >/dev/null 2>&1; then source="--no-index --find-links /wheels"; else source=""; fi
# shellcheck disable=SC2086  # $source is two words or none
/opt/venv/bin/pip install -q --require-hashes --no-deps --only-binary=:all: $source -r "$1"
# --no-deps trusted the subset to be complete; pip check says if an edge was missed.
/opt/venv/bin/pip check
# Test suites that ship inside wheels (numpy's and scipy's: about 45 MB) are never run here.
find /opt/venv/lib -type d -name tests -prune -exec rm -rf {} +
# Not needed to run, and a package manager is one more thing in a running container.
/opt/venv/bin/pip uninstall -q -y pip setuptools
