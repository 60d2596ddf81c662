# syntax=docker/dockerfile:1.7
# One image for every hitstream process; the first argument chooses which:
#   gateway | worker | migrate | topics | init (topics, then migrate) | results-web [--port N]
#   | hitstream <cli args> | any other command, run as is.
# Settings come from HITS_* variables only (see `hitstream settings`).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers only for wheels a platform may lack; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY gateway ./gateway
COPY pipeline ./pipeline
COPY deploy ./deploy
COPY hitstream ./hitstream
COPY results ./results
# The runtime dependencies only: no dev extras, not editable.
RUN pip install . && pip check

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 hitstream \
    && useradd --system --uid 10001 --gid hitstream --no-create-home \
       --home-dir /var/lib/hitstream --shell /usr/sbin/nologin hitstream \
    && mkdir -p /var/lib/hitstream/data /var/lib/hitstream/spool \
    && chown -R hitstream:hitstream /var/lib/hitstream
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 <<'SCRIPT' /usr/local/bin/hitstream-entrypoint
#!/bin/sh
set -e
command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  gateway)     exec python -m gateway "$@" ;;
  worker)      exec python -m pipeline.worker "$@" ;;
  migrate)     exec python -m deploy.migrate "$@" ;;
  topics)      exec python -m deploy.topics "$@" ;;
  init)        python -m deploy.topics && exec python -m deploy.migrate ;;
  results-web) exec python -m results.web --host 0.0.0.0 "$@" ;;
  hitstream)   exec hitstream "$@" ;;
  "")          echo "usage: gateway | worker | migrate | topics | init | results-web | hitstream ..." >&2
               exit 2 ;;
  *)           exec "$command" "$@" ;;
esac
SCRIPT
# Spool (gateway) and RocksDB (worker) live here; mount one volume per process.
WORKDIR /var/lib/hitstream
ENV HITS_DATA_DIR=/var/lib/hitstream/data \
    HITS_SPOOL_DIR=/var/lib/hitstream/spool
USER hitstream:hitstream
EXPOSE 8080 6066 8090
ENTRYPOINT ["hitstream-entrypoint"]
CMD ["gateway"]
