# syntax=docker/dockerfile:1
#
# One image for every wirescript service; the first argument picks the service:
#   docker build -t wirescript:0.1.0 .
#   docker run --rm wirescript:0.1.0                  # --help
#   docker run --rm -e NATS_URL=nats://nats:4222 wirescript:0.1.0 script-runner
#
# Node 24 runs the TypeScript sources directly (type stripping): no build step,
# only dependencies are installed, native addons compiled in the build stage.
#
# Live capture as the non-root user: /usr/local/bin/netcap-exec (source:
# deploy/image/netcap-exec.c) carries the file capabilities
# cap_net_raw,cap_net_admin=p and hands them to the command it runs as ambient
# capabilities; `node` itself gets none. The Helm chart's capture DaemonSet runs
# `netcap-exec node bin/wirescript.ts capture` with NET_RAW and NET_ADMIN
# added; with Docker:
#   docker run --rm --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     -e NATS_URL=nats://127.0.0.1:4222 --entrypoint /usr/local/bin/netcap-exec \
#     wirescript:0.1.0 node bin/wirescript.ts capture
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------
# manifests: only the files `npm ci` reads (root package.json, the lockfile and
# every workspace's package.json, at their paths), so the dependency layer in
# `build` is rebuilt only when one of them changes, not on every source edit.
# A workspace with a native addon (a binding.gyp, e.g. packages/pcap-stats) is
# compiled by `npm ci` (its install script runs node-gyp), so its gyp files
# and C/C++ sources come along too.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir -p /out \
 && cp package.json package-lock.json /out/ \
 && find packages services -mindepth 2 -maxdepth 2 -name package.json -exec cp --parents {} /out/ \; \
 && find packages services -mindepth 2 -maxdepth 2 -name binding.gyp -printf '%h\n' | while read -r addon; do \
      find "$addon" \( -name build -o -name node_modules \) -prune -o -type f \
        \( -name binding.gyp -o -name '*.gypi' -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' \) \
        -exec cp --parents {} /out/ \; ; \
    done

# ---------------------------------------------------------------------------
# build: production dependencies, with what native addons need to compile
# (the `cap` packet-capture addon: libpcap headers, python3, make, g++), and
# netcap-exec (gcc).
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ gcc libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=manifests /out/ ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
# netcap-exec (after the dependencies, so editing it does not reinstall them):
# a small C program, hardened build flags; capabilities are set
# in the runtime stage (a COPY between stages does not reliably keep them).
COPY deploy/image/netcap-exec.c /usr/local/src/netcap-exec.c
RUN gcc -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pie \
      -Wl,-z,relro,-z,now -o /usr/local/bin/netcap-exec /usr/local/src/netcap-exec.c
# Sources after dependencies (.dockerignore keeps node_modules, tests and dev
# files out, so the installed node_modules trees are left as they are).
COPY . .

# ---------------------------------------------------------------------------
# runtime: Node 24 and the libpcap shared library, no compilers; libcap2-bin
# for setcap (and getcap, to check an image: getcap /usr/local/bin/netcap-exec).
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
# Permitted only, no effective bit: the kernel grants these only as far as the
# container's capability bounding set allows (the capture pod adds NET_RAW and
# NET_ADMIN; every other pod drops ALL and gets nothing), and an exec in a
# container without them still succeeds. `setcap -v` fails the build if the
# filesystem did not keep them.
COPY --from=build /usr/local/bin/netcap-exec /usr/local/bin/netcap-exec
RUN setcap cap_net_raw,cap_net_admin=p /usr/local/bin/netcap-exec \
 && setcap -v cap_net_raw,cap_net_admin=p /usr/local/bin/netcap-exec
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the service user.
COPY --from=build /app /app
# The base image's unprivileged `node` user, by number so that Kubernetes'
# runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["node", "bin/wirescript.ts"]
CMD ["--help"]
