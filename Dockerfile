# Symbiote's worker (`symbiote serve`) as a container: docs/deploy.md explains every setting.
#
#   docker build -t symbiote-worker .
#   docker run -p 4000:4000 -v symbiote-state:/data --env-file worker.env symbiote-worker
#
# The worker keeps no state of its own besides a git clone of its state repository (/data/state,
# a volume): sessions, requests and results live on that repository's __STORAGE__ branch, so any
# number of replicas can share it and a restart loses nothing.
FROM python:3.12-slim

# git: the storage branch is a git clone. No compiler: every dependency ships wheels.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/symbiote
COPY pyproject.toml README.md ./
COPY symbiote_cli ./symbiote_cli
RUN pip install --no-cache-dir . \
    && useradd --create-home --home-dir /home/symbiote --uid 10001 --user-group symbiote \
    && mkdir -p /data/state \
    && chown -R symbiote:symbiote /data

# Never root: the worker needs nothing but its clone and the network.
USER 10001:10001
WORKDIR /data/state
VOLUME ["/data"]

# The clone the worker stores its records in (SYMBIOTE_STORAGE_REPO); see docs/deploy.md for how it
# gets push access to the state repository (a deploy key or a token in the remote's credentials).
ENV SYMBIOTE_STORAGE_REPO=/data/state \
    SYMBIOTE_MODE=actions \
    FORWARDED_ALLOW_IPS=127.0.0.1

EXPOSE 4000

# /health answers {"status": "ok"} (200) or {"status": "degraded"} (503) without auth.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4000/health', timeout=4).status == 200 else 1)"]

# Behind a TLS proxy: set FORWARDED_ALLOW_IPS to the proxy's address (or network) so that the
# client address and scheme come from X-Forwarded-For / X-Forwarded-Proto.
ENTRYPOINT ["symbiote"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4000", "--proxy-headers"]
