# syntax=docker/dockerfile:1
# Images of the tuner services, one target each (non-root, PyTorch only in the trainer):
#   docker build --target scheduler -t tuner-scheduler .
#   docker build --target trainer -t tuner-trainer .          # CPU PyTorch
#   docker build --target trainer -t tuner-trainer:cuda \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The services and their dependencies, in a virtual environment the final stages copy.
FROM base AS build
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tuner tuner
COPY scheduler scheduler
COPY store store
COPY trainer trainer
COPY tui tui
RUN pip install .

# PyTorch from its own index first (CPU wheels by default), then the pinned extra, which it satisfies.
FROM build AS build-trainer
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
RUN pip install --index-url "${TORCH_INDEX}" --extra-index-url https://pypi.org/simple \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
    && pip install ".[trainer]"

FROM base AS runtime
RUN groupadd --system --gid 10001 tuner \
    && useradd --system --uid 10001 --gid tuner --create-home --home-dir /home/tuner tuner \
    && mkdir /data && chown tuner:tuner /data
WORKDIR /home/tuner

FROM runtime AS scheduler
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /opt/tuner/healthcheck.py
ENV TUNER_LISTEN=0.0.0.0:50051
EXPOSE 50051
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/tuner/healthcheck.py"]
CMD ["python", "-m", "scheduler"]

FROM runtime AS trainer
COPY --from=build-trainer /opt/venv /opt/venv
ENV TUNER_DATA_DIR=/data
USER 10001:10001
CMD ["python", "-m", "trainer"]
