# SurgeDCA service image: the runtime only, every package hash-pinned, non-root, the database on the /data volume.
#
# The base is pinned by digest (python:3.11-slim as published; refresh it deliberately with
# `docker buildx imagetools inspect python:3.11-slim`). Nothing is installed but requirements.lock: no test
# tools, no build tools. The project itself is not built into a wheel (that would fetch setuptools around the
# lock): its source sits in /app and `surgedca` runs `python -m trading.cli`, the console script's own target.
FROM python:3.11-slim@sha256:be1575ed968de893bd54f4c56315ff7c4736ce522c1bca08fd521731aafc0d76

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A Hangul font, so that charts (/chart, alert charts) are labelled in Korean, not only in English.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-nanum && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary=:all: -r requirements.lock

COPY bot ./bot
COPY trading ./trading
COPY storage ./storage
COPY locales ./locales
# Compiled catalogues; the `surgedca` command; a non-root user; /app/data -> /data, so that the default
# DB_PATH (data/surgedca-<mode>.sqlite3) and its backups land on the volume.
RUN pybabel compile --domain messages --directory locales --use-fuzzy \
    && printf '#!/bin/sh\nexec python -m trading.cli "$@"\n' > /usr/local/bin/surgedca \
    && chmod 0755 /usr/local/bin/surgedca \
    && useradd --create-home --uid 10001 surgedca \
    && install -d -m 0700 -o surgedca -g surgedca /data \
    && ln -s /data /app/data

USER surgedca
VOLUME ["/data"]
STOPSIGNAL SIGTERM
# Healthy while the service writes its health snapshot (every 10 s); start-up loads candle history first.
HEALTHCHECK --interval=60s --timeout=20s --start-period=300s --retries=3 CMD ["surgedca", "status", "--check"]
CMD ["surgedca", "run"]
