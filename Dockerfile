# syntax=docker/dockerfile:1
# facedb service image: dependencies are installed in a build stage, and a slim runtime
# stage runs the server as a non-root user. Model weights are not part of the image: mount
# them at /models, or let the server download the registry's default models into /models
# on first start (SHA-256 verified).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY facedb ./facedb
# facedb and every pinned dependency into the venv, then facedb itself out again: the
# runtime stage runs the source tree, beside migrations/ where it finds its revisions.
RUN /venv/bin/pip install . && /venv/bin/pip uninstall -y facedb

FROM ${PYTHON_IMAGE} AS runtime
# libgomp: OpenMP for onnxruntime and FAISS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/facedb --create-home facedb \
    && mkdir -p /models \
    && chown facedb:facedb /models
COPY --from=build /venv /venv
WORKDIR /opt/facedb
COPY facedb ./facedb
COPY migrations ./migrations
COPY docker/entrypoint.sh /usr/local/bin/facedb-entrypoint
COPY docker/healthcheck.py /usr/local/bin/facedb-healthcheck
ENV PATH=/venv/bin:$PATH \
    PYTHONPATH=/opt/facedb \
    PYTHONUNBUFFERED=1 \
    FACEDB_DATA_DIR=/var/lib/facedb \
    FACEDB_MODEL_DIR=/models \
    FACEDB_HOST=0.0.0.0 \
    FACEDB_PORT=50051 \
    FACEDB_HTTP_PORT=8080
USER facedb
VOLUME ["/var/lib/facedb", "/models"]
EXPOSE 50051 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "/usr/local/bin/facedb-healthcheck"]
ENTRYPOINT ["facedb-entrypoint"]
