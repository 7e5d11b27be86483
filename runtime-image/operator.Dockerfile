# syntax=docker/dockerfile:1
# The gptoss-operator image: the operator (`gptoss-operator run`) and the router
# (`gptoss-operator router`) are the same Python package, so one image serves both.
#
#   docker buildx build -f runtime-image/operator.Dockerfile -t IMAGE .     (see docs/images.md)
#
# BASE must provide python3 (>= 3.11) with the venv module; builder and final stage use the
# same BASE so the venv's interpreter path is the same in both.
ARG BASE=docker.io/library/python:3.12-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY crds ./crds
# Build the wheel, then install it with its dependencies into a venv (PEP 668 base images
# refuse installs into the system Python). pip byte-compiles here, at build time, so a
# read-only root file system never needs to write a .pyc.
RUN python3 -m venv /opt/gptoss \
 && /opt/gptoss/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/gptoss/bin/pip install /wheels/*.whl \
 && /opt/gptoss/bin/pip uninstall --yes pip \
 && /opt/gptoss/bin/gptoss-operator --version

FROM ${BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG BASE
LABEL org.opencontainers.image.title="gptoss-operator" \
      org.opencontainers.image.description="Kubernetes operator and OpenAI-compatible hybrid router for OpenAI's gpt-oss models on vLLM" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE}"
COPY --from=build /opt/gptoss /opt/gptoss
# PYTHONDONTWRITEBYTECODE: nothing is written outside /tmp, so the container runs with a
# read-only root file system (Kubernetes readOnlyRootFilesystem, `podman run --read-only`).
# PYTHONUNBUFFERED: log lines reach `kubectl logs` as they are written.
ENV PATH=/opt/gptoss/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
# A numeric non-root user (the "nonroot" uid of distroless images), so runAsNonRoot can verify
# it without a passwd entry.
USER 65532:65532
WORKDIR /tmp
# Both processes handle SIGTERM themselves (uvicorn and kopf install handlers), so they stop
# cleanly as PID 1; `docker run --init` adds a reaper but is not needed.
ENTRYPOINT ["gptoss-operator"]
CMD ["run"]
