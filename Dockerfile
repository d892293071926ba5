# dora-action container image.
#
# Nothing is compiled here: the build context must already hold a static musl
# binary per architecture and a CA bundle (no base image is pulled, so this
# builds offline with buildah and multi-arch with buildx without emulation):
#   dist/amd64/dora-action  dist/arm64/dora-action  dist/ca-certificates.crt
# scripts/build-image.sh stages them locally; .github/workflows/release.yml
# stages them for the published image.
#
# No USER line on purpose: GitHub runs container actions as root and mounts
# the workspace and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files owned by the
# runner, so a non-root user could not write them.
FROM scratch

# Set by buildx / buildah per platform; scripts/build-image.sh passes it too.
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=""

LABEL org.opencontainers.image.title="dora-action" \
      org.opencontainers.image.description="GitHub Action: delivery signals (deploy runs, deployments, Flux, Flagger) as DORA metrics in Prometheus" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chmod=0755 dist/${TARGETARCH}/dora-action /dora-action

ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

ENTRYPOINT ["/dora-action"]
