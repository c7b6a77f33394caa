# syntax=docker/dockerfile:1
#
# One image for every wirescript service; the first argument picks the service:
#   docker build -t wirescript:0.1.0 .
#   docker run --rm wirescript:0.1.0                  # --help
#   docker run --rm -e NATS_URL=nats://nats:4222 wirescript:0.1.0 script-runner
#
# Node 24 runs the TypeScript sources directly (type stripping): no build step,
# only dependencies are installed, native addons compiled in the build stage.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------
# manifests: only the files `npm ci` reads (root package.json, the lockfile and
# every workspace's package.json, at their paths), so the dependency layer in
# `build` is rebuilt only when one of them changes, not on every source edit.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir -p /out \
 && cp package.json package-lock.json /out/ \
 && find packages services -mindepth 2 -maxdepth 2 -name package.json -exec cp --parents {} /out/ \;

# ---------------------------------------------------------------------------
# build: production dependencies, with what native addons need to compile
# (the `cap` packet-capture addon: libpcap headers, python3, make, g++).
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=manifests /out/ ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
# Sources after dependencies (.dockerignore keeps node_modules, tests and dev
# files out, so the installed node_modules trees are left as they are).
COPY . .

# ---------------------------------------------------------------------------
# runtime: Node 24 and the libpcap shared library, no compilers.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the service user.
COPY --from=build /app /app
# The base image's unprivileged `node` user, by number so that Kubernetes'
# runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["node", "bin/wirescript.ts"]
CMD ["--help"]
