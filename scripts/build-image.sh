#!/usr/bin/env bash
# Build the dora-action container image locally, without a Docker engine and
# without pulling anything: a static musl binary is compiled with cargo, staged
# in dist/ with the host's CA bundle, and `FROM scratch` is built with buildah.
#
# Usage: scripts/build-image.sh
#
# Environment:
#   IMAGE           image name to tag (default: dora-action:test)
#   STORAGE_DRIVER  buildah storage driver (default: vfs, works everywhere)
#   DORA_ACTION_BIN use this prebuilt static binary instead of running cargo
#
# Needs: cargo + rustup target <arch>-unknown-linux-musl, musl-tools (aws-lc-sys
# is C code), buildah. buildah needs root; when not root it runs under sudo.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE="${IMAGE:-dora-action:test}"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"

die() { echo "build-image: error: $*" >&2; exit 1; }

case "$(uname -m)" in
    x86_64) arch=amd64 target=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) arch=arm64 target=aarch64-unknown-linux-musl ;;
    *) die "unsupported machine $(uname -m)" ;;
esac

sudo=()
if [[ ${EUID} -ne 0 ]]; then
    command -v sudo >/dev/null || die "buildah needs root and sudo is not installed"
    sudo=(sudo)
fi
buildah=("${sudo[@]}" buildah --storage-driver "${STORAGE_DRIVER}")

command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"

if [[ -n ${DORA_ACTION_BIN:-} ]]; then
    bin="${DORA_ACTION_BIN}"
    [[ -f ${bin} ]] || die "DORA_ACTION_BIN=${bin} does not exist"
    echo "==> using prebuilt binary ${bin}"
else
    if ! command -v cargo >/dev/null && [[ -f ${HOME}/.cargo/env ]]; then
        # shellcheck source=/dev/null
        . "${HOME}/.cargo/env"
    fi
    command -v cargo >/dev/null || die "cargo not found"
    command -v musl-gcc >/dev/null || die "musl-gcc not found (apt-get install musl-tools)"
    # cc-rs looks for <triple>-gcc first; musl-gcc is what musl-tools ships.
    cc_var="CC_${target//-/_}"
    export "${cc_var}=${!cc_var:-musl-gcc}"
    echo "==> cargo build --release --locked --target ${target}"
    cargo build --release --locked --target "${target}"
    bin="target/${target}/release/dora-action"
fi

echo "==> staging dist/"
rm -rf dist
mkdir -p "dist/${arch}"
install -m 0755 "${bin}" "dist/${arch}/dora-action"
ca=/etc/ssl/certs/ca-certificates.crt
[[ -s ${ca} ]] || die "${ca} missing (apt-get install ca-certificates)"
install -m 0644 "${ca}" dist/ca-certificates.crt
if command -v file >/dev/null; then
    file -b "dist/${arch}/dora-action"
    file -b "dist/${arch}/dora-action" | grep -q 'static' \
        || die "dist/${arch}/dora-action is not statically linked"
fi

old_id="$("${buildah[@]}" images --quiet --no-trunc "${IMAGE}" 2>/dev/null || true)"

echo "==> buildah bud -t ${IMAGE} (storage driver ${STORAGE_DRIVER})"
"${buildah[@]}" bud --isolation chroot --quiet \
    --build-arg "TARGETARCH=${arch}" \
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f Dockerfile -t "${IMAGE}" .

new_id="$("${buildah[@]}" images --quiet --no-trunc "${IMAGE}")"
if [[ -n ${old_id} && ${old_id} != "${new_id}" ]]; then
    # The previous build is now untagged; vfs stores full copies, so drop it.
    "${buildah[@]}" rmi "${old_id}" >/dev/null 2>&1 || true
fi

bin_bytes="$(stat -c %s "dist/${arch}/dora-action")"
echo "==> binary dist/${arch}/dora-action: ${bin_bytes} bytes ($((bin_bytes / 1024 / 1024)) MiB)"
echo "==> image ${IMAGE}: $("${buildah[@]}" images --format '{{.Size}}' "${IMAGE}")"
