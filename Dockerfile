# The stash2plex Plex metadata provider (`stash2plex provider serve`).
#
#   docker build -t stash2plex-provider .
#   docker run -p 9090:9090 -e STASH2PLEX_STASH_URL=http://stash:9999 \
#       -e STASH2PLEX_STASH_API_KEY=... -e STASH2PLEX_PROVIDER_SECRET=... stash2plex-provider
#
# Every setting comes from STASH2PLEX_* environment variables (or a TOML file named by
# STASH2PLEX_CONFIG). Only PyPI is used at build time.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE MANIFEST.in ./
COPY src ./src
COPY integrations ./integrations
# httptools and uvloop make uvicorn several times faster than its pure-Python fallbacks.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[provider]" "httptools>=0.6" "uvloop>=0.19"

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STASH2PLEX_PROVIDER_HOST=0.0.0.0 \
    STASH2PLEX_PROVIDER_PORT=9090 \
    STASH2PLEX_DATA_DIR=/data
RUN useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin stash2plex \
    && mkdir -p /data \
    && chown stash2plex:stash2plex /data \
    && chmod 0700 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "stash2plex[provider]" httptools uvloop \
    && rm -rf /wheels
USER stash2plex
VOLUME ["/data"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STASH2PLEX_PROVIDER_PORT', '9090') + '/health', timeout=4)"]
ENTRYPOINT ["stash2plex"]
CMD ["provider", "serve"]
