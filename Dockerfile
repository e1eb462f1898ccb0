# syntax=docker/dockerfile:1
#
# The ctsguard image: a release build of the `ctsguard` binary on distroless/cc (glibc,
# libgcc, CA certificates, tzdata; no shell, no package manager), running as the image's
# nonroot user (65532). The Helm chart (helm/ctsguard) runs /usr/local/bin/ctsguard.
#
#   docker build -t registry.example.com/security/ctsguard:0.1.0 .
#
# Base images are pinned by tag. To pin by digest as well, append the digest your registry
# reports (docker buildx imagetools inspect rust:1.95-bookworm), e.g.
# --build-arg RUST_IMAGE=rust:1.95-bookworm@sha256:<digest>.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# .dockerignore lets in only the manifest, the lock file and the sources.
COPY . .
# The binary is linked against glibc 2.36 (bookworm), which distroless/cc-debian12 carries.
# aws-lc-sys builds with the C compiler of the image (no cmake needed). Debug info is dropped
# (symbols kept for panic backtraces) to keep the image small.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked --bin ctsguard \
    && install -D -m 0755 target/release/ctsguard /out/ctsguard \
    && /out/ctsguard --version

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="ctsguard" \
      org.opencontainers.image.description="Scheduled worker over Huawei Cloud / Open Telekom Cloud CTS trace buckets" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ctsguard /usr/local/bin/ctsguard
# The distroless nonroot user, numeric so that runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/ctsguard"]
CMD ["--help"]
