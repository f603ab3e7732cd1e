# syntax=docker/dockerfile:1
# imgcdn: build in the Rust image, run in a slim Debian with only the binary, its default
# config and the sample images. Port 8000, non-root, cache on a volume, config via IMGCDN_* env.

FROM rust:1-bookworm AS build
# libjpeg-turbo (turbojpeg) and libheif are built from their bundled sources with cmake (and
# nasm); rav1e's kernels need nasm too; libheif links Debian's HEVC (libde265) and AV1 (dav1d)
# decoders, found with pkg-config.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake nasm pkg-config libde265-dev libdav1d-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin imgcdn \
 && cp target/release/imgcdn /usr/local/bin/imgcdn

FROM debian:bookworm-slim
# ca-certificates for https origins; curl only for the health check; the HEVC and AV1 decoders
# libheif calls (security updates to them come from apt).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libde265-0 libdav1d6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 imgcdn \
 && useradd --system --uid 10001 --gid 10001 --home-dir /srv/imgcdn --shell /usr/sbin/nologin imgcdn \
 && mkdir -p /srv/imgcdn /var/cache/imgcdn \
 && chown imgcdn:imgcdn /var/cache/imgcdn
COPY --from=build /usr/local/bin/imgcdn /usr/local/bin/imgcdn
COPY config/default.toml /srv/imgcdn/config/default.toml
COPY images /srv/imgcdn/images
WORKDIR /srv/imgcdn
ENV IMGCDN_SERVER__LISTEN=0.0.0.0:8000 \
    IMGCDN_CACHE__DIR=/var/cache/imgcdn \
    RUST_LOG=info
VOLUME ["/var/cache/imgcdn"]
EXPOSE 8000
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["/usr/local/bin/imgcdn"]
CMD ["serve"]
