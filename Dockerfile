# syntax=docker/dockerfile:1
#
# FlowLoom services image: one image for every service; the command picks what runs.
#
#   docker build -t flowloom:dev .
#   docker run --rm -p 8080:8080 -p 50051:50051 --read-only --tmpfs /tmp -v flowloom-data:/data flowloom:dev
#                                           # `flowloom up`: the whole platform on embedded storage in /data
#   docker run ... flowloom:dev serve gateway   # one service of a distributed install (see docker-compose.yml)
#
# The image holds only the runtime sources, the proto contracts and the production dependencies. The CLI
# runs its TypeScript sources from a bundle (services/flowloom/bin/bundle.mjs), built once here when the
# image is built, as it is on a laptop's first start.
#
# Read-only root filesystem: the app is owned by root and not writable by the service user. Two places
# must be writable: /tmp (scratch space; mount a tmpfs/emptyDir) and /data (FLOWLOOM_DATA_DIR, the
# embedded database and outbox of `flowloom up`; unused by `serve` on PostgreSQL).

ARG NODE_IMAGE=node:20-bookworm-slim
# The npm the lock file is written with (package.json "packageManager"); the base image's npm 10 is older.
ARG NPM_VERSION=11.19.1

# --- manifests: only the package.json files and the lock, so that the `npm ci` layer below stays cached
#     until a dependency changes, not whenever a source file does.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /manifests/ \; \
 && cp package-lock.json /manifests/

# --- deps: production dependencies of the CLI workspace, which composes every service
#     (`flowloom up`, `flowloom serve <name>`). Dev tools (vitest, biome, typescript, turbo) and the
#     test workspace's SDKs are left out.
FROM ${NODE_IMAGE} AS deps
ARG NPM_VERSION
WORKDIR /app
RUN npm install --global --no-audit --no-fund "npm@${NPM_VERSION}"
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --workspace services/flowloom --no-audit --no-fund

# --- source: the runtime sources only (no tests, scripts, deploy files or docs).
FROM ${NODE_IMAGE} AS source
WORKDIR /src
COPY . .
RUN rm -rf tests scripts deploy helm .ci docker-compose.yml Dockerfile .dockerignore \
 && find libs services \( -type d -name test -prune -o -type f -name '*.test.ts' \) -exec rm -rf {} +

# --- runtime
FROM ${NODE_IMAGE} AS runtime
# npm, npx, corepack and yarn are not needed to run the services; leaving them out keeps the image small
# and image scanners quiet.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && groupadd --system --gid 10001 flowloom \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin flowloom \
 && mkdir -p /data \
 && chown 10001:10001 /data

# In a container the services listen on every interface; the laptop default (127.0.0.1) would be
# unreachable from outside the container.
ENV NODE_ENV=production \
    FLOWLOOM_HOST=0.0.0.0 \
    FLOWLOOM_HTTP_PORT=8080 \
    FLOWLOOM_GRPC_PORT=50051 \
    FLOWLOOM_DATA_DIR=/data

WORKDIR /app
# All of /app from deps, not only node_modules: npm nests a workspace's own node_modules
# (libs/telemetry/node_modules) when its versions differ from the hoisted ones.
COPY --from=deps /app/ ./
COPY --from=source /src/ ./
# The CLI bundle, into /app/node_modules/.cache/flowloom while /app is still writable.
RUN node services/flowloom/bin/flowloom.js --help > /dev/null

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080 50051

# Liveness of the HTTP server (node:20-slim has no curl or wget; Node 20 has fetch). docker compose and
# Kubernetes use /readyz for readiness on top of this.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.FLOWLOOM_HTTP_PORT||8080}/healthz`,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node handles SIGTERM itself (in-flight requests and streams finish, then the outbox drains).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "services/flowloom/bin/flowloom.js"]
CMD ["up"]
