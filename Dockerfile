# Tasse: `docker run -v $PWD/data:/data -p 4243:4243 tasse` serves the tasks in ./data/tasks.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TASSE_DATA_DIR=/data
# uv's cache beside the task environments (/data/venvs): on the same filesystem packages
# are hard-linked rather than copied, and the volume keeps it across containers.
ENV UV_CACHE_DIR=/data/.uv-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tasse ./tasse
RUN pip install . \
    && useradd --create-home --uid 1000 tasse \
    && mkdir -p /data/tasks \
    && chown -R tasse:tasse /data

USER tasse
VOLUME /data
EXPOSE 4243

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4243/health', timeout=4).status != 200)"]

CMD ["tasse", "serve", "--data-dir", "/data", "--http-listen-address", "0.0.0.0:4243"]
