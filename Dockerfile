# oms-api: build a virtualenv in one stage, run it as a non-root user in another.
# Expects DATABASE_URL (postgresql://…); the embedded PostgreSQL is for laptops, not containers.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/oms
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/oms/bin/pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 oms
COPY --from=build /opt/oms /opt/oms
ENV PATH="/opt/oms/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    OMS_LOG_FORMAT=json
USER oms
WORKDIR /home/oms
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["oms-api"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
