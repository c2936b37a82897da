# syntax=docker/dockerfile:1
# One image for the operator (`lakeop run`) and the ingestion Job pods (`lakeop ingest ...`).
#
# Stage 1 builds lakeop and every dependency as wheels (compilers available there if a
# dependency ever lacks a wheel for the platform); stage 2 installs only those wheels into a
# slim base without compilers and runs as an unprivileged user. Build with:
#   docker build -t lakeop:0.1.0 .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# README.md is the package's long description; the wildcard keeps the build working without it.
COPY pyproject.toml README.md* ./
# The same pinned versions as development and CI.
COPY requirements/constraints.txt requirements/
# operator/lakeop/crds is a symlink to crds/: the CRDs ship inside the package.
COPY crds/ crds/
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c requirements/constraints.txt .

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="lakeop" \
      org.opencontainers.image.description="Declarative, GitOps-native data-lake ingestion for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
# Install from the builder's wheels only (no index), without keeping them in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/lakeop-*.whl \
    && groupadd --system --gid 65532 lakeop \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin lakeop
WORKDIR /tmp
USER 65532:65532
# kopf liveness (8080), metrics (9090), admission webhook (9443)
EXPOSE 8080 9090 9443
ENTRYPOINT ["lakeop"]
CMD ["run", "--all-namespaces"]
