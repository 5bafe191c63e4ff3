# kafka-edge container image.
#
# Two targets give the same runtime image: an empty (scratch) root holding the
# binary, the dynamic loader and the three libraries it links (libc, libm,
# libgcc_s), /etc/passwd with the numeric user 65532, and nothing else: no
# shell, no package manager. The gateway writes nothing to disk, so the
# container runs with a read-only root filesystem.
#
#   runtime (default)  compiles kafka-edge in a Rust image, then packs it:
#                        docker build -t kafka-edge:0.1.0 .
#   runtime-local      packs a binary built on this machine; pulls no image:
#                        cargo build --release --no-default-features
#                        deploy/docker/assemble-rootfs target/release/kafka-edge deploy/docker/rootfs
#                        buildah bud --target runtime-local -t kafka-edge:0.1.0 .
#
# Configuration: mount a TOML file at /etc/kafka-edge/kafka-edge.toml (the
# default command reads it), or replace the command with flags:
#   docker run kafka-edge:0.1.0 --bootstrap-server kafka:9092 --listen 0.0.0.0:9092 \
#       --advertised-host kafka.example.com --admin-listen 0.0.0.0:9191
#
# Ports: 9092 bootstrap, 19000+N broker N (port mode; EXPOSE lists node ids 0-2),
# 9191 admin (/livez, /readyz, /metrics). All are set by the configuration:
# EXPOSE only documents the defaults.

# The Rust image of the builder stage; any Debian-based Rust >= 1.85 works.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm

# What both runtime targets share.
FROM scratch AS runtime-base
LABEL org.opencontainers.image.title="kafka-edge" \
      org.opencontainers.image.description="Kafka-protocol-aware gateway: one external endpoint, every broker address rewritten" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 9092 19000-19002 9191
ENTRYPOINT ["/kafka-edge"]
CMD ["--config", "/etc/kafka-edge/kafka-edge.toml"]

# A binary built on this machine, laid out by deploy/docker/assemble-rootfs.
# This stage comes before the builder so that building it never needs the Rust
# image.
FROM runtime-base AS runtime-local
COPY deploy/docker/rootfs/ /

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The allocator's settings (JEMALLOC_SYS_WITH_MALLOC_CONF) are part of the build.
COPY .cargo ./.cargo
COPY benches ./benches
COPY src ./src
COPY deploy/docker/assemble-rootfs /usr/local/bin/assemble-rootfs
# Without the `demo` feature: no librdkafka in the image. The cache mounts keep
# the registry and the build directory between builds; the binary is packed in
# the same step, before the build directory's mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features \
    && assemble-rootfs target/release/kafka-edge /rootfs

FROM runtime-base AS runtime
COPY --from=builder /rootfs/ /
