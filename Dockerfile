# syntax=docker/dockerfile:1
# visionserve image: a builder makes the venv, the final stage gets only the venv, the app and the weights.
#   docker build -t visionserve .                                         # CPU, weights baked in
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t visionserve:gpu .  # GPU
#   docker build --build-arg FETCH_WEIGHTS=false -t visionserve:test .    # test builds: no weights, no network
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the configured index (CPU wheels by default, a CUDA index for GPU images)
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

FROM builder AS weights
ARG FETCH_WEIGHTS=true
ARG WEIGHTS=imagenet
ARG WEIGHTS_SHA256=""
ENV TORCH_HOME=/opt/visionserve/torch
# verified by fetch-weights: the full sha256 when given, else torchvision's published hash prefix
RUN mkdir -p "${TORCH_HOME}" \
    && if [ "${FETCH_WEIGHTS}" = "true" ]; then \
         visionserve fetch-weights --weights "${WEIGHTS}" --sha256 "${WEIGHTS_SHA256}"; \
       fi

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="visionserve" \
      org.opencontainers.image.description="ResNet-50 image classification (ImageNet-1k and CIFAR-10 heads)" \
      org.opencontainers.image.source="https://github.com/visionserve/visionserve" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TORCH_HOME=/opt/visionserve/torch \
    VISIONSERVE_HOST=0.0.0.0 \
    VISIONSERVE_PORT=8080 \
    MALLOC_ARENA_MAX=2
WORKDIR /opt/visionserve
COPY --from=builder /opt/venv /opt/venv
COPY --from=weights /opt/visionserve/torch /opt/visionserve/torch
# the app is installed in the venv, with the `visionserve` command the chart runs (serve, fetch-weights, smoke-test)
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["visionserve", "serve"]
