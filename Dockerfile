# Threadline: the OpenAI-compatible Threads & Messages API over a Jan data folder.
#   docker build -t threadline .
#   docker run -p 127.0.0.1:1337:1337 -v threadline-data:/data -e THREADLINE_API_KEYS=... threadline
# Two stages: the first builds a virtualenv with Debian's python3, the second copies only that
# venv onto a fresh slim image (no pip cache, no build tools, no source tree).

FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/threadline
WORKDIR /src
# Dependencies first, from pyproject alone, so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/threadline/bin/pip install -r requirements.txt
COPY README.md ./
COPY service ./service
# pip and setuptools are not needed to run: out of the image (and out of scanners' reports).
RUN /opt/threadline/bin/pip install --no-deps . \
 && /opt/threadline/bin/pip uninstall -y -q pip setuptools

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /data --shell /usr/sbin/nologin threadline \
 && mkdir /data && chown threadline:threadline /data
COPY --from=build /opt/threadline /opt/threadline
# The documented defaults, found at the default path config/threadline.toml under the workdir;
# mount your own file over it (or pass --config / THREADLINE_CONFIG) to change settings.
WORKDIR /app
COPY config/threadline.toml config/threadline.toml
ENV PATH=/opt/threadline/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER threadline
VOLUME /data
EXPOSE 1337
# No curl in slim: ask /healthz with the interpreter we already have. 503 (index still building)
# and connection errors both raise, so both count as unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('THREADLINE_PORT', '1337'), timeout=4)"]
# The server is PID 1 (exec form, no shell): aiohttp handles SIGTERM itself and shuts down
# gracefully within its shutdown timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["threadline"]
CMD ["serve", "--host", "0.0.0.0", "--data-dir", "/data"]
