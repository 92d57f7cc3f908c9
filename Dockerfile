# syntax=docker/dockerfile:1
#
# token-validator container image.
#
#   docker build -t token-validator .
#   docker run --rm -p 50051:50051 -p 9090:9090 \
#     -e COGNITO_REGION=us-east-1 -e COGNITO_USER_POOL_ID=us-east-1_AbCdEf123 \
#     -e COGNITO_CLIENT_IDS=4example2client token-validator
#
# The runtime stage is distroless "cc" (glibc, libgcc, CA certificates, tzdata,
# no shell, no package manager) and runs as the unprivileged "nonroot" user
# (uid/gid 65532). The builder is Debian bookworm as well, so the binary links
# against the same glibc it runs on.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# Everything `cargo build` reads: manifests, lock file, build script, proto
# contract and sources (.dockerignore keeps target/, .git/ and the rest out).
# A [[bench]] or [[example]] declared in Cargo.toml with a path must be copied too.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
COPY tests ./tests
# The cache mounts keep the crates.io index, downloaded crates and incremental
# artefacts between builds; the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin token-validator \
    && install -D -m 0755 target/release/token-validator /out/token-validator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="token-validator" \
      org.opencontainers.image.description="gRPC service that validates Amazon Cognito ID and access tokens" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/token-validator /usr/local/bin/token-validator
# Numeric ids, so Kubernetes' runAsNonRoot can verify them without /etc/passwd.
USER 65532:65532
# 50051: gRPC (tokenvalidator.v1.TokenValidator, grpc.health.v1, reflection)
#  9090: HTTP  (/metrics, /healthz, /readyz)
EXPOSE 50051 9090
ENV RUST_LOG=info
# For plain `docker run`; ECS and Kubernetes define their own checks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/token-validator", "health"]
# With no arguments `serve` reads the one-pool environment variables
# (COGNITO_REGION, COGNITO_USER_POOL_ID, COGNITO_CLIENT_IDS); give a config file
# as arguments (docker run IMAGE --config /etc/token-validator/config.yaml) or
# with TOKEN_VALIDATOR_CONFIG=/etc/token-validator/config.yaml.
ENTRYPOINT ["token-validator", "serve"]
