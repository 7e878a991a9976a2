# Hearth's image: one image for the web app and the worker; the command decides
# (`hearth serve`, the default, or `hearth worker`). Nothing in it is tied to one
# architecture: it builds on amd64 and arm64 (a Raspberry Pi 5) alike.
#
#   docker build -t hearth:local .        (or `make up`, which builds it through Compose)
#
# Behind a TLS-intercepting proxy, hand its CA bundle to the builder stage as a build secret
# (it never reaches the final image):
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt -t hearth:local .

# A base with Python 3.11 or newer and its venv module: the official python:*-slim images,
# or Debian with python3 and python3-venv (/usr/bin/python3). Both stages use the same
# base, so the virtualenv's interpreter path is valid in the final one.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

# The uv the Makefile pins (UV_VERSION), from PyPI.
ARG UV_VERSION=0.13.9

# Compile bytecode at build time: the final image is read-only at run time, and a Pi should
# not recompile every module at every start. The uv cache lives on a cache mount, hence copy.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/hearth \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The optional ca_bundle secret: a proxy's CA for pip and uv, used here and forgotten.
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then \
        export PIP_CERT=/run/secrets/ca_bundle SSL_CERT_FILE=/run/secrets/ca_bundle; \
    fi \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first, from the lock only: this layer survives changes to Hearth's code.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
    && /opt/uv/bin/uv sync --locked --no-dev --no-install-project

# Then Hearth itself, installed as a wheel (not editable): /src stays behind in this stage.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
    && /opt/uv/bin/uv sync --locked --no-dev --no-editable


FROM ${BASE_IMAGE}

ARG HEARTH_UID=10001

# A system user without a shell; numeric in USER, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid "${HEARTH_UID}" hearth \
    && useradd --system --uid "${HEARTH_UID}" --gid hearth --home-dir /var/lib/hearth \
        --create-home --shell /usr/sbin/nologin hearth

COPY --from=builder /opt/hearth /opt/hearth

# HOST=0.0.0.0: a container is reached through its published port; Compose decides what is
# published. The working directory is the hearth user's: a .env there is read, and without
# DATABASE_URL the embedded PostgreSQL keeps its files in /var/lib/hearth/data.
ENV PATH=/opt/hearth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    HEARTH_DATA_DIR=/var/lib/hearth/data

WORKDIR /var/lib/hearth
USER ${HEARTH_UID}:${HEARTH_UID}
EXPOSE 8000

# `hearth check --ready` asks the server's /readyz with the standard library only (no app
# import): about 0.1 s of CPU per probe. The worker overrides it (`hearth check --worker`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hearth", "check", "--ready"]

CMD ["hearth", "serve"]
