# One image for the operator (`lakeop run`) and the ingestion Job pods (`lakeop ingest ...`).
#
# Stage 1 builds lakeop and every dependency as wheels; stage 2 installs only those wheels
# into a virtualenv on the same base, without pip's caches, and runs as an unprivileged user.
# Neither stage has compilers unless the base has them: every dependency ships wheels.
#
# BASE defaults to the Debian bookworm root filesystem `make image` builds here with
# debootstrap (devcluster/image.sh), so no registry is needed. With registry access:
#   docker build --build-arg BASE=python:3.11-slim-bookworm -t lakeop:0.1.0 .
# Behind a TLS-intercepting proxy, pass the CA bundle pip must trust as a build secret:
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt ...
# (No `# syntax=` line: it makes BuildKit fetch a frontend image from Docker Hub.)
ARG BASE=lakeop-base:bookworm
# The extras installed beside lakeop's own dependencies: `postgres` gives SQLAlchemy its
# PostgreSQL driver (psycopg), which a `postgresql+psycopg://` source URL names.
ARG EXTRAS=postgres

FROM ${BASE} AS builder
ARG EXTRAS
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The dependencies first, from pyproject.toml's list and the same pinned versions as
# development and CI, so a change to lakeop's code rebuilds only lakeop's own wheel.
COPY pyproject.toml requirements/constraints.txt ./
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && python3 -m venv /opt/build \
    && EXTRAS="$EXTRAS" python3 -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ['EXTRAS'].split(',') if e]; print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" >requirements.txt \
    && /opt/build/bin/pip wheel --wheel-dir /wheels -c constraints.txt -r requirements.txt
# README.md is the package's long description; the wildcard keeps the build working without it.
COPY README.md* ./
# operator/lakeop/crds is a symlink to crds/: the CRDs ship inside the package.
COPY crds/ crds/
COPY operator/ operator/
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels .

FROM ${BASE}
ARG EXTRAS
LABEL org.opencontainers.image.title="lakeop" \
      org.opencontainers.image.description="Declarative, GitOps-native data-lake ingestion for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    PATH=/opt/lakeop/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Install from the builder's wheels only (no index), without keeping them in a layer; pip
# itself is removed from the runtime virtualenv afterwards. The bytecode pip compiles stays:
# the root filesystem is read-only at run time, so Python could not cache it there.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3 -m venv /opt/lakeop \
    && /opt/lakeop/bin/pip install --no-index --find-links=/wheels "lakeop${EXTRAS:+[$EXTRAS]}" \
    && /opt/lakeop/bin/pip uninstall -y -q pip \
    && groupadd --system --gid 65532 lakeop \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin lakeop
WORKDIR /tmp
USER 65532:65532
# kopf liveness (8080), metrics (9090), admission webhook (9443)
EXPOSE 8080 9090 9443
ENTRYPOINT ["lakeop"]
CMD ["run", "--all-namespaces"]
