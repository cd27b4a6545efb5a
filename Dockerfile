# SurgeDCA service image: slim Python, non-root, database on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DB_PATH=/data/surgedca.sqlite3

# A Hangul font, so that charts (/chart, alert charts) are labelled in Korean, not only in English.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-nanum && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY bot ./bot
COPY trading ./trading
COPY storage ./storage
COPY locales ./locales
RUN pip install --no-cache-dir --no-deps -e . \
    && pybabel compile --domain messages --directory locales --use-fuzzy \
    && useradd --create-home --uid 10001 surgedca \
    && mkdir -p /data && chown surgedca:surgedca /data

USER surgedca
VOLUME ["/data"]
STOPSIGNAL SIGTERM
CMD ["surgedca", "run"]
