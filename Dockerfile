# Tidings: one image for every role. TIDINGS_ROLE picks what the process runs
# (gateway | presence | all); the rest of the config is env, see README.
#
# TypeScript runs through tsx at run time (it is a production dependency), so
# there is no build stage: the image holds the sources plus production deps.

# ---- dependencies -----------------------------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev keeps vitest, biome and the SDKs out; tsx stays (it is a
# dependency). --ignore-scripts: nothing we run needs an install script (the
# uWebSockets.js and esbuild binaries ship inside their packages), and it
# keeps third-party code from running at build time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    TIDINGS_ROLE=all \
    PORT=6001
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json tsconfig.json ./
COPY --chown=root:root shared/src ./shared/src
COPY --chown=root:root services ./services

# The `node` user (uid 1000) ships with the base image. Sources stay owned by
# root, so the process cannot rewrite its own code. tsx keeps its transform
# cache in the OS temp dir: mount a writable /tmp when the root filesystem is
# read-only (the Helm chart and k8s/ manifests do).
USER 1000:1000
EXPOSE 6001

# `node --import tsx` instead of the tsx CLI: the CLI runs the program in a
# child process, this keeps Node as PID 1 so SIGTERM reaches the app's drain
# handler directly. The app installs its own SIGTERM/SIGINT handlers, which
# PID 1 needs (the kernel applies no default action to it).
CMD ["node", "--import", "tsx", "services/main.ts"]
