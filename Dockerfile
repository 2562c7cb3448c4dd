# syntax=docker/dockerfile:1
# Multi-stage: build with the release profile CI builds (linked for this
# image's C library, below), then assemble the runtime image's whole file
# system from the build stage (deploy/image/rootfs.sh: the stripped binary,
# the four shared libraries it links, the CA bundle, passwd/group, /tmp).
# `cargo xtask deploy-check` runs this stage's cargo command, the script
# and the runtime stage without a Docker engine and starts the gateway
# inside the result.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The image carries this stage's C library (glibc 2.36), so its gateway is
# linked with packed relative relocations (RELR, which glibc loads from
# 2.36 on): 1.5 MB smaller than the table of RELA entries. A gateway built
# with plain `cargo build --release` keeps RELA and runs on glibc 2.34 and
# later (Amazon Linux 2023, Ubuntu 22.04). Only the last link differs:
# `cargo rustc` passes the flag to the binary's link alone.
RUN cargo rustc --release --locked -p gateway --bin gateway -- -C link-arg=-Wl,-z,pack-relative-relocs \
 && sh deploy/image/rootfs.sh target/release/gateway /image

# The demo's fake SageMaker and Bedrock (test support, for
# `docker compose --profile demo`): `docker build --target demo-upstreams .`
FROM build AS demo-upstreams-build
RUN cargo build --release --locked -p mock-upstreams --bin demo-upstreams \
 && cp target/release/demo-upstreams /demo-upstreams

FROM gcr.io/distroless/cc-debian12:nonroot AS demo-upstreams
COPY --from=demo-upstreams-build /demo-upstreams /usr/local/bin/demo-upstreams
USER nonroot:nonroot
EXPOSE 9001 9002
ENTRYPOINT ["/usr/local/bin/demo-upstreams"]

# The gateway (the default target): nothing but what rootfs.sh put there
# (no shell, no package manager); runs as uid 65532 (nonroot), whose home
# holds the records file.
FROM scratch AS runtime
COPY --from=build /image/root/ /
COPY --from=build --chown=65532:65532 /image/home/ /home/

# The seed's variables work unchanged (see README "Configuration"):
#   SAGEMAKER_ENDPOINT_NAME  one-endpoint mode: every model name reaches it
#   AUTH_SECRET_ID           Secrets Manager secret holding the API key(s)
#   API_KEY_CACHE_TTL        seconds keys are cached (default 3600)
#   AWS_REGION               region (China regions use the aws-cn partition)
#   API_KEY                  static key(s), comma-separated
#   PORT                     listen port (default 8080)
#   GATEWAY_CONFIG           path of a TOML config file (optional)
#   RECORDS_URL              request records: the SQLite file below by default
#                            (mount a volume there), or postgres://…
ENV PORT=8080 \
    LOG_FORMAT=json \
    RECORDS_URL=sqlite:///home/nonroot/gateway-records.db?mode=rwc
WORKDIR /home/nonroot
EXPOSE 8080
USER 65532:65532

# No curl in the image: the binary probes its own /ping.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/gateway", "--healthcheck"]

ENTRYPOINT ["/usr/local/bin/gateway"]
