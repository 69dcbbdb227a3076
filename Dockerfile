# One image for the processes of the compose stack (docker-compose.yml): the code server
# (`dagster code-server start`, which also runs the runs it launches), the webserver, the daemon
# and the data service (`massive-pipeline serve`). Build: docker build -t massive-pipeline .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY massive_pipeline ./massive_pipeline
RUN pip install .

# The production instance (PostgreSQL storage; connection values from the environment) and the
# compose stack's workspace (the gRPC code server).
COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/workspace.yaml ./workspace.yaml

RUN useradd --system --uid 10001 --home-dir /opt/dagster dagster \
    && chown -R dagster ${DAGSTER_HOME}
USER dagster

EXPOSE 4000 3000 8000

# The code server; the webserver, daemon and service services override the command.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "massive_pipeline.definitions"]
