# Tidings: one image for every role. TIDINGS_ROLE picks what the process runs
# (gateway | presence | all); the rest of the config is env, see README.
#
# The image runs compiled JavaScript (tsc emit, `npm run build`) with plain
# node: no TypeScript, tsx or esbuild in the final stage, and an idle gateway
# holds ~66 MB RSS instead of ~98 MB under tsx.
#
# Node 24 (LTS) on Debian trixie in every stage: the uWebSockets.js build
# with Node 24 binaries (@btc-vision/uwebsockets.js, an optional dependency;
# shared/src/http/uws.ts picks it by ABI) needs glibc 2.38, which bookworm
# (2.36) lacks, and the gateway refuses uWS's JS fallback. See README
# "Requirements"; shared/test/node-runtime.test.ts keeps this line and the
# binaries in step.

# ---- build: compile services/ and shared/src/ to dist/ ----------------------
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace's manifest: npm ci refuses a lockfile whose workspaces are missing.
COPY shared/client/package.json ./shared/client/
# --ignore-scripts: nothing we build needs an install script (the
# uWebSockets.js binaries ship inside their package), and it keeps
# third-party code from running at build time.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared/src ./shared/src
# The SDK's browser build is served by the demo; copy-assets puts it and the
# pages the gateway reads at run time into dist/.
COPY shared/client ./shared/client
COPY shared/build ./shared/build
COPY services ./services
RUN npm run build

# ---- production dependencies only --------------------------------------------
FROM node:24-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/client/package.json ./shared/client/
# --omit=dev drops the compiler (typescript, tsx, esbuild), vitest, biome and
# the SDKs; --workspaces=false leaves the browser SDK out.
# Both uWS packages ship binaries for every OS; the image needs Linux's only.
RUN npm ci --omit=dev --workspaces=false --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules -name 'uws_*.node' \( -name 'uws_darwin_*' -o -name 'uws_win32_*' \) -delete

# ---- runtime ----------------------------------------------------------------
FROM node:24-trixie-slim
ENV NODE_ENV=production \
    TIDINGS_ROLE=all \
    PORT=6001 \
    TIDINGS_METRICS_PORT=9090
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
# package.json says "type": "module" for dist/ and names the version.
COPY --chown=root:root package.json ./
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root bin ./bin

# The `node` user (uid 1000) ships with the base image. Files stay owned by
# root, so the process cannot rewrite its own code; nothing is written at
# run time, so the root filesystem can be read-only.
USER 1000:1000
# 6001: clients (WebSockets, HTTP APIs) and the probes; 9090: /metrics and
# the console, for the cluster's inside only.
EXPOSE 6001 9090

# node itself is PID 1, so SIGTERM reaches the app's drain handler directly;
# the app installs its own SIGTERM/SIGINT handlers, which PID 1 needs (the
# kernel applies no default action to it). `docker run IMAGE node
# bin/tidings.js token …` (or `config`, `--help`) runs the CLI from dist/.
# --max-semi-space-size=2 (MiB; Node 20's default grows to 16): V8's young
# generation is garbage between collections, and at the default it is most
# of a gateway's RSS per connection (README, Performance: memory per
# connection 6.4 -> 4.3 KiB in a connect storm, for a few % more CPU).
CMD ["node", "--max-semi-space-size=2", "--enable-source-maps", "dist/services/main.js"]
