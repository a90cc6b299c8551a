# The modelrollout operator image. Build it from the repository root:
#
#   make images                           # here: on the local Debian base, cached by content
#   docker build -t modelrollout:dev .    # anywhere a registry and PyPI are reachable
#
# It runs `python -m modelrollout` as the unprivileged user 65532, with no shell, and writes
# nothing outside /tmp, so it runs under the chart's restricted pod security (read-only root
# filesystem, an emptyDir on /tmp).
#
# BASE picks the Python 3.11 image both stages start from. The public default is
# python:3.11-slim; a release pins it by digest with --build-arg BASE_DIGEST=@sha256:<digest>,
# which the release job fills in from the registry when it builds (no digest is written here:
# none could be checked from where this was written, and an invented one would not pull).
# The venv comes first on PATH, so `python` is the venv's: the chart's Deployment runs the
# container with `command: [python, -m, modelrollout]`, which replaces the entrypoint.
# `make images` sets BASE to a Debian bookworm image made with debootstrap (e2e/images/base.sh),
# for machines that cannot pull. The two stages must use the same base: the venv's python is a
# link to the base's interpreter.
ARG BASE=python:3.11-slim
ARG BASE_DIGEST=

FROM ${BASE}${BASE_DIGEST} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Only the operator's own dependencies of the lock, hash-checked (e2e/images/lock_subset.py says
# why a subset). e2e/images/wheels/ holds the wheels when `make images` downloaded them on the
# host (the build then never reaches PyPI); it is empty in a clean clone, and pip goes to PyPI.
COPY requirements.lock pyproject.toml e2e/images/lock_subset.py e2e/images/install-locked.sh /src/
COPY e2e/images/wheels/ /wheels/
RUN python3 /src/lock_subset.py /src/requirements.lock --pyproject /src/pyproject.toml > /src/image.txt \
 && sh /src/install-locked.sh /src/image.txt
# On PYTHONPATH rather than pip-installed: building the package would fetch setuptools, which the
# lock does not pin. Compiled here, since the run stage's read-only filesystem cannot cache bytecode.
COPY operator/modelrollout/ /app/modelrollout/
RUN /opt/venv/bin/python -m compileall -q /app

FROM ${BASE}${BASE_DIGEST}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp
# A name for 65532: kopf names its peering identity after the user (getpass.getuser), which
# fails for a uid without one. USER covers any other uid a cluster picks (OpenShift's).
RUN echo 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonroot:x:65532:' >> /etc/group
ENV USER=nonroot
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "modelrollout"]
