# Builds the s2z-kata plugin with the same scripts as the README, on Debian bookworm.
#   docker build -t s2z-kata .
#   docker run --rm -v /opt/nomad/plugins:/out s2z-kata cp /usr/local/bin/s2z-kata /out/
# The plugin itself runs on the Nomad client host, not in a container: it needs the
# host's network namespace, /dev/net/tun, bpffs and cgroup v2.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN S2Z_BUILD_DIR=/build ./scripts/build.sh && strip -o /s2z-kata /build/driver/s2z-kata

FROM debian:bookworm-slim
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libbpf1 libelf1 libyaml-cpp0.7 libspdlog1.10 libfmt9 \
      qemu-system-x86 iproute2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /s2z-kata /usr/local/bin/s2z-kata
CMD ["/usr/local/bin/s2z-kata"]
