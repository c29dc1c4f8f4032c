# Patron gateway image. One image runs every role: `serve` (default), `migrate`, `fakes`,
# `jobs run NAME`, `token ...`: the entrypoint is the `patron` console script.
#
#   docker build -t patron .
#   docker run --rm -p 8000:8000 patron serve --demo --host 0.0.0.0
#
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the project and its dependencies -------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/patron
ENV PATH=/opt/patron/bin:$PATH
WORKDIR /src

# Dependencies first (read from pyproject.toml), so that a code change reuses this layer.
# (README.md* : pyproject.toml names it as the readme, but the build does not need it.)
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --upgrade pip \
    && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install; gateway/static is package data).
COPY gateway/ gateway/
COPY resolvers/ resolvers/
COPY loyalty/ loyalty/
COPY adapters/ adapters/
RUN pip install --no-deps . \
    && patron --help > /dev/null

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/patron/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATRON_PROGRAM=programs/club-harry.toml \
    PATRON_TRUSTED_DOCUMENTS=examples/manifest.json

RUN groupadd --system --gid 10001 patron \
    && useradd --system --uid 10001 --gid patron --home-dir /app --shell /usr/sbin/nologin patron \
    && install -d -o patron -g patron -m 0755 /app

COPY --from=build /opt/patron /opt/patron
WORKDIR /app
# Program definitions, read-only for the service user; /app itself is writable (a demo's SQLite).
# PATRON_PROGRAM and PATRON_TRUSTED_DOCUMENTS above are relative to /app: the defaults (next to
# the installed package) do not exist in a non-editable install.
COPY programs/ programs/
# The manifest of trusted documents (the apps' operations, by hash), relative to /app too.
COPY examples/manifest.json examples/manifest.json

USER patron:patron
EXPOSE 8000

# GET /healthz on the port `serve` listens on; a role on another port sets PATRON_HEALTHCHECK_URL
# (or its compose service overrides the healthcheck). Only python's standard library: no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('PATRON_HEALTHCHECK_URL', 'http://127.0.0.1:8000/healthz'), timeout=4)"]

ENTRYPOINT ["patron"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
