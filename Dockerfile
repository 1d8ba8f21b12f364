# syntax=docker/dockerfile:1
# visionserve image: a builder makes the venv, the final stage gets only the venv, the app and the weights.
#   docker build -t visionserve .                                         # weights baked in; CPU and GPU nodes
#   docker build --build-arg FETCH_WEIGHTS=false -t visionserve:test .    # test builds: no weights, no network
# Every Python package comes from a hash-locked file (`make lock` writes them): requirements/image.lock resolves
# on PyPI, whose torch is the CUDA build (it runs on CPU too). A CPU-only image, without the CUDA libraries, uses
# the lock resolved on PyTorch's CPU index (`make lock TORCH=cpu`, where that index can be reached):
#   docker build --build-arg LOCK=requirements/image-cpu.lock \
#     --build-arg PIP_INDEX_URL=https://download.pytorch.org/whl/cpu --build-arg PIP_EXTRA_INDEX_URL=https://pypi.org/simple .
# The base image is pinned by digest (renovate.json keeps it current); local builds override BASE_IMAGE.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${BASE_IMAGE} AS builder
# Which index serves the locked files does not matter to what is installed: each file must match a hash in LOCK
# (a mirror of PyPI, like the local index the image test mounts, serves the very same files).
ARG LOCK=requirements/image.lock
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/ ./requirements/
# exactly the locked files, no dependency resolution: a file whose hash is not in the lock fails the build
RUN pip install --require-hashes --no-deps --requirement "${LOCK}"
COPY pyproject.toml README.md ./
COPY app ./app
# the project alone, built with the locked setuptools (no isolated build fetching unlocked tools); then every
# installed package's requirements must be met by what the lock installed
RUN pip install --no-deps --no-build-isolation . && pip check

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
