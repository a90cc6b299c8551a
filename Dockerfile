# The modelrollout operator image. Build it from the repository root:
#
#   docker build -t modelrollout:dev .
#
# It runs `python -m modelrollout` as the unprivileged user 65532 and writes nothing outside
# /tmp, so it runs under the chart's restricted pod security (read-only root filesystem, an
# emptyDir on /tmp).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

WORKDIR /src
COPY pyproject.toml ./
COPY operator/ ./operator/
RUN pip install . && rm -rf /src

WORKDIR /
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "modelrollout"]
