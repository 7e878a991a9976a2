# Hearth's image: one image for the web app and the worker; the command decides
# (`hearth serve`, the default, or `hearth worker`). Nothing in it is tied to one
# architecture: it builds on amd64 and arm64 (a Raspberry Pi 5) alike. It needs a
# PostgreSQL server (DATABASE_URL): the embedded one of `make run` is not in it.
#
#   docker build -t hearth:local .        (or `make up`, which builds it through Compose)
#
# Plain Dockerfile instructions only (no RUN --mount, no heredoc, no `# syntax=` line, which
# would fetch a frontend image from Docker Hub): BuildKit builds it, and so does the classic
# builder of Docker 20.10 to 22 (DOCKER_BUILDKIT=0) and of engines without buildx.
#
# Behind a TLS-intercepting proxy, the builder stage needs the proxy's CA to reach PyPI and
# Debian: put a bundle of it (and the usual roots) in an image of its own and name that image
# in CA_IMAGE. Only the builder stage sees it; the final image keeps its base's certificates.
#   mkdir ca && cp /etc/ssl/certs/ca-certificates.crt ca/
#   printf 'FROM scratch\nCOPY ca-certificates.crt /etc/ssl/certs/\n' > ca/Dockerfile
#   docker build -t local/ca ca && docker build --build-arg CA_IMAGE=local/ca -t hearth:local .

# A Debian base with Python 3.11 or newer, its venv module and ca-certificates: the official
# python:*-slim images, or Debian with python3, python3-venv and ca-certificates
# (/usr/bin/python3). Both stages use the same base, so the virtualenv's interpreter path is
# valid in the final one.
ARG BASE_IMAGE=python:3.11-slim-bookworm
# Where the builder's CA bundle (/etc/ssl/certs/ca-certificates.crt) comes from: the base.
ARG CA_IMAGE=${BASE_IMAGE}

FROM ${CA_IMAGE} AS ca

FROM ${BASE_IMAGE} AS builder

# The uv the Makefile pins (UV_VERSION), from PyPI.
ARG UV_VERSION=0.13.9

# uv, pip and apt trust the bundle from CA_IMAGE. No bytecode from uv: deploy/docker/bytecode.py
# compiles what the processes import, below.
ENV UV_NO_CACHE=1 \
    UV_PYTHON=python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/hearth \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=ca /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# binutils for `strip`, below; whatever version the base's Debian release has (builder only).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first, from the lock only: this layer survives changes to Hearth's code. The
# runtime and the traces extra (docs/traces.md): not the embedded extra, and never the dev
# group (--no-dev); uv puts no pip, setuptools or wheel in the virtualenv. Then what the
# runtime never reads: the debug symbols of compiled extensions (uvloop's alone are 12 MB; `--strip-unneeded`
# keeps what linking needs), the packages' own test suites, type stubs (.pyi, for type
# checkers), the C, C++ and Cython sources of compiled extensions, Protocol Buffers' schemas
# (the generated modules are what runs) and the translations' sources (.po and .pot: gettext
# reads the compiled .mo). The .py sources stay: tracebacks quote them, and some packages
# read their own (anyio builds its lazy imports from its source).
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --locked --no-dev --extra traces --no-install-project \
    && find /opt/hearth -type f -name '*.so*' -exec strip --strip-unneeded {} + \
    && find /opt/hearth/lib -depth -type d -name tests -exec rm -rf {} + \
    && find /opt/hearth -type f \( -name '*.pyi' -o -name '*.c' -o -name '*.h' \
        -o -name '*.cpp' -o -name '*.hpp' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
        -o -name '*.proto' -o -name '*.po' -o -name '*.pot' \) -delete

# Then Hearth itself, installed as a wheel (not editable): /src stays behind in this stage.
# Last, the bytecode, compiled once (one optimisation level): the final image is read-only
# at run time, and a Pi should not recompile at every start what each process imports. Only
# that, though: the modules no process imports (half of the third-party code) keep their
# source alone, about 16 MB less (deploy/docker/bytecode.py says how).
COPY README.md ./
COPY src ./src
COPY deploy/docker/bytecode.py ./
RUN /opt/uv/bin/uv sync --locked --no-dev --extra traces --no-editable \
    && /opt/hearth/bin/python bytecode.py


FROM ${BASE_IMAGE}

ARG HEARTH_UID=10001

# A system user without a shell; numeric in USER, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid "${HEARTH_UID}" hearth \
    && useradd --system --uid "${HEARTH_UID}" --gid hearth --home-dir /var/lib/hearth \
        --create-home --shell /usr/sbin/nologin hearth

COPY --from=builder /opt/hearth /opt/hearth

# HOST=0.0.0.0: a container is reached through its published port; Compose decides what is
# published. The working directory is the hearth user's: a .env there is read.
ENV PATH=/opt/hearth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json

WORKDIR /var/lib/hearth
USER ${HEARTH_UID}:${HEARTH_UID}
EXPOSE 8000

# `hearth check --ready` asks the server's /readyz with the standard library only (no app
# import): about 0.1 s of CPU per probe. The worker overrides it (`hearth check --worker`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hearth", "check", "--ready"]

CMD ["hearth", "serve"]
