# Tasse: `docker run -v $PWD/data:/data -p 4243:4243 tasse` serves the tasks in ./data/tasks.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TASSE_DATA_DIR=/data \
    TASSE_HTTP_LISTEN_ADDRESS=0.0.0.0:4243
# uv's cache beside the task environments (/data/venvs): on the same filesystem packages
# are hard-linked rather than copied, and the volume keeps it across containers.
ENV UV_CACHE_DIR=/data/.uv-cache

# tini as PID 1: it reaps the orphans a task leaves behind (zombies otherwise pile up
# under the server) and passes SIGTERM on to it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tasse ./tasse
# With the drivers of both production stores: PostgreSQL (psycopg) and MariaDB (pymysql).
RUN pip install '.[postgres,mysql]' \
    && useradd --create-home --uid 1000 tasse \
    && mkdir -p /data/tasks \
    && chown -R tasse:tasse /data

USER tasse
VOLUME /data
EXPOSE 4243

# Asks the address the server listens on (TASSE_HTTP_LISTEN_ADDRESS): another port given
# with `-e TASSE_HTTP_LISTEN_ADDRESS=0.0.0.0:8080` is followed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "tasse.cli.health"]

ENTRYPOINT ["tini", "--"]
CMD ["tasse", "serve"]
