# artifactstore's team server (docs/server.md, "Install"): the wheel the README installs
# (`pip install .`), built from this checkout in a builder stage, installed with the
# server, s3 and gcs extras into a slim runtime that runs as a non-root user.
#
#   docker build -t artifactstore-server .
#   docker run -p 8080:8080 --env-file server.env \
#     -v "$PWD/server.toml:/etc/artifactstore/server.toml:ro" -v store:/data artifactstore-server
#
# Configuration comes from the mounted server.toml (store, public_url, issuers, roles);
# secrets only from the environment (ARTIFACTSTORE_SERVER_SECRET, each issuer's
# client_secret_env, cloud credentials): nothing secret is baked into the image.

FROM python:3.12.8-slim-bookworm AS wheel
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY artifactstore ./artifactstore
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.12.8-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 artifactstore \
    && useradd --system --uid 10001 --gid artifactstore --create-home \
       --home-dir /home/artifactstore artifactstore \
    && mkdir -p /data /etc/artifactstore \
    && chown artifactstore:artifactstore /data
COPY --from=wheel /dist /tmp/dist
# The exact wheel file, not a name pip would look up on an index: pinned by being
# this checkout's build (hence DL3013, "pin versions in pip", does not apply).
# hadolint ignore=DL3013
RUN for wheel in /tmp/dist/artifactstore-*.whl; do \
        pip install --no-cache-dir "${wheel}[server,s3,gcs]" || exit 1; \
    done \
    && rm -rf /tmp/dist
USER 10001:10001
WORKDIR /home/artifactstore
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).close()"]
ENTRYPOINT ["artifactstore", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--config", "/etc/artifactstore/server.toml"]
