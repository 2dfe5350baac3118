# Builds the osbd binary (control plane and worker roles share it).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p osbd --bin osbd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates nftables iproute2 util-linux e2fsprogs curl python3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/osbd /usr/local/bin/osbd
ENTRYPOINT ["osbd"]
