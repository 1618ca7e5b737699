# syntax=docker/dockerfile:1
#
# The `assay` binary and the shipped plugins in a small image, for
# docker-compose.yml (an API node and workers on PostgreSQL) or on its own:
#
#   docker build -t assay .
#   docker run --rm assay --help
#
# Stage 1 builds the release binary and the shipped plugins (WASI components,
# target wasm32-wasip2) exactly as scripts/setup.sh does; stage 2 holds only
# the binary, the components and CA certificates, and runs as a user without
# privileges.

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The caches keep crates and compiled dependencies between builds; the
# results are copied out of the cached target directory into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    ./scripts/build-plugins.sh --shipped-only \
    && cargo build --release --locked -p assay \
    && mkdir -p /out/plugins \
    && cp target/release/assay /out/assay \
    && for manifest in plugins/*/Cargo.toml; do \
           name="$(basename "$(dirname "$manifest")")"; \
           cp "target/wasm32-wasip2/plugin/${name//-/_}.wasm" /out/plugins/; \
       done

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 assay \
    && mkdir -p /var/cache/assay \
    && chown assay /var/cache/assay
COPY --from=build /out/assay /usr/local/bin/assay
COPY --from=build /out/plugins/ /usr/local/share/assay/plugins/
USER assay
WORKDIR /home/assay
# Compiled plugins are cached here (per container; pointing several
# processes at one shared cache directory is not needed).
ENV ASSAY_CACHE_DIR=/var/cache/assay
# `docker stop` sends SIGTERM: assay stops gracefully (in-flight items get
# --grace, 30 s by default; give the container longer than that).
STOPSIGNAL SIGTERM
EXPOSE 4111
ENTRYPOINT ["assay"]
CMD ["--help"]
