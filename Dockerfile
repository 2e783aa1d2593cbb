# One image for the fdstore agent (the sidecar), the operator and the launcher
# (fdstore-exec); entrypoint `fdstore`. See docs/image.md.
#
#   docker build -t fdstore:0.1.0 .                  # with registry access (public bases)
#   scripts/image/build.sh                           # here: local debootstrap bases, podman
#
# The runtime stage has no shell, no package manager and no compiler: node, the
# libraries it links, the app, and the agent's passwd entry. It runs as uid 64919 and
# writes nothing outside its mounted volumes (read-only root file system).

# Debian bookworm with node 20 (binary, headers and npm under NODE_PREFIX), python3
# (node-gyp), make, gcc, binutils and libc6-dev (the static launcher needs libc.a).
# The runtime's glibc and libstdc++ are copied from here, so this picks them too.
ARG BUILDER_IMAGE=docker.io/library/node:20-bookworm
# Empty by default: the runtime gets exactly the files the builder stages. Another base
# (e.g. gcr.io/distroless/cc-debian12) works only where those files may overlay it.
ARG RUNTIME_BASE=scratch

FROM ${BUILDER_IMAGE} AS builder
ARG NODE_PREFIX=/usr/local
# node-gyp builds against the builder's own node headers: no download from nodejs.org.
ENV npm_config_nodedir=${NODE_PREFIX} \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
# Dependencies first: this layer is reused until package.json or the lock file change.
# --ignore-scripts: the package's own install/prepare need the sources (run below).
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
# The build's inputs; scripts/image/build.sh hashes the same paths for the image tag.
COPY tsconfig.json tsconfig.build.json ./
COPY bin/ bin/
COPY src/ src/
COPY agent/ agent/
COPY scripts/image/stage-runtime.sh scripts/image/
# package.json's install script (the addon with node-gyp, the static launcher with
# make), the TypeScript, then only runtime dependencies are kept.
RUN npm run install \
 && npm run build \
 && npm prune --omit=dev \
 && mkdir -p build \
 && gcc -O2 -Wall -Wextra -Werror -o build/fdstore agent/entry/fdstore.c \
 && bash scripts/image/stage-runtime.sh "$NODE_PREFIX" /stage

FROM ${RUNTIME_BASE}
ARG RUNTIME_BASE
ARG BUILDER_IMAGE
# build.sh passes package.json's version and the git commit.
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="fdstore" \
      org.opencontainers.image.description="systemd's notify protocol and file descriptor store for Kubernetes pods: the agent (sidecar), the operator and the fdstore-exec launcher" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_BASE}" \
      dev.fdstore.image.builder="${BUILDER_IMAGE}"
# Three layers, from the least to the most often changed (stage-runtime.sh).
COPY --from=builder /stage/base/ /
COPY --from=builder /stage/deps/ /
COPY --from=builder /stage/app/ /
ENV PATH=/usr/local/bin
# The agent's own uid (docs/security.md): not root, not 65532 (distroless nonroot).
USER 64919:64919
# A tiny exec of node on bin/fdstore.js (agent/entry/fdstore.c): node is PID 1.
ENTRYPOINT ["/usr/local/bin/fdstore"]
CMD ["--help"]
