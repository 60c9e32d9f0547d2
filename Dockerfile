# syntax=docker/dockerfile:1
# The `consistentid` image: the binary and the web app's bundle, nothing else (no Python, no
# onnxruntime). The CPU build by default:
#
#   docker build -t consistentid:cpu .
#   docker run -p 7860:7860 -v consistentid-models:/models consistentid:cpu
#
# The CUDA build (NVIDIA GPUs; burn-cuda compiles its kernels with NVRTC at run time, so the
# runtime image needs CUDA's NVRTC and driver libraries, not a compiler):
#
#   docker build -t consistentid:cuda --build-arg FEATURES=cuda \
#     --build-arg BUILD_BASE=nvidia/cuda:12.8.1-devel-ubuntu24.04 \
#     --build-arg RUN_BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 .
#   docker run --gpus all -p 7860:7860 -v consistentid-models:/models consistentid:cuda
#
# The tool versions are those of scripts/install-tools.sh (a test keeps them in step).
# compose.yaml runs the hosted demo from this image: PostgreSQL, SeaweedFS, two API processes
# and two workers.

ARG BUILD_BASE=rust:1.95-bookworm
ARG RUN_BASE=debian:bookworm-slim

FROM ${BUILD_BASE} AS build
ARG FEATURES=
ARG TRUNK_VERSION=0.21.14
ARG WASM_BINDGEN_VERSION=0.2.130
ARG BINARYEN_VERSION=132
# cmake and nasm build libjpeg-turbo (the JPEG decoder); npm brings wasm-opt. A CUDA base has
# no Rust: rustup installs it there.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl build-essential pkg-config cmake nasm npm \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cargo/bin:/root/.cargo/bin:$PATH
RUN command -v cargo >/dev/null \
 || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95
RUN rustup target add wasm32-unknown-unknown \
 && cargo install trunk --version "$TRUNK_VERSION" --locked \
 && cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" \
 && npm install -g --silent "binaryen@$BINARYEN_VERSION"
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p consistentid-native ${FEATURES:+--features "$FEATURES"} \
 && SKIP_TOOLS=1 bash scripts/build-web.sh

FROM ${RUN_BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /opt/consistentid --uid 10001 consistentid \
 && mkdir -p /models /data \
 && chown consistentid /models /data
COPY --from=build /src/target/release/consistentid /usr/local/bin/consistentid
# `serve` finds the web app in ./dist.
COPY --from=build /src/dist /opt/consistentid/dist
WORKDIR /opt/consistentid
USER consistentid
ENV CONSISTENTID_LOG_FORMAT=json
EXPOSE 7860
VOLUME ["/models", "/data"]
ENTRYPOINT ["consistentid"]
CMD ["serve", "--host", "0.0.0.0", "--model", "/models/consistentid-model", "--data", "/data"]
