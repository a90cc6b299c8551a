# The load generator and the pod runner that feeds it pod addresses, for a kind cluster, where
# they run in a pod (e2e/kind/world.py) so that the cluster's Prometheus scrapes the load
# generator's counters. Built by `e2e/images/build.sh --with-loadgen` from the repository root,
# as the model server's image is (see e2e/modelserver/Dockerfile), with the kubernetes client.
ARG BASE=python:3.11-slim
ARG BASE_DIGEST=

FROM ${BASE}${BASE_DIGEST} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.lock e2e/images/lock_subset.py e2e/images/install-locked.sh /src/
COPY e2e/images/wheels/ /wheels/
RUN python3 /src/lock_subset.py /src/requirements.lock aiohttp numpy prometheus-client scikit-learn kubernetes > /src/image.txt \
 && sh /src/install-locked.sh /src/image.txt
COPY e2e/__init__.py /app/e2e/
COPY e2e/cluster/__init__.py e2e/cluster/pki.py e2e/cluster/processes.py /app/e2e/cluster/
COPY e2e/loadgen/ /app/e2e/loadgen/
COPY e2e/modelserver/ /app/e2e/modelserver/
COPY e2e/podrunner/ /app/e2e/podrunner/
RUN /opt/venv/bin/python -m compileall -q /app

FROM ${BASE}${BASE_DIGEST}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["python", "-m"]
