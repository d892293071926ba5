#!/usr/bin/env bash
# Build the image (scripts/build-image.sh), then run the action inside it the
# way the GitHub runner does for a container action: the event payload under
# /github/workflow, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files under
# /github/file_commands, INPUT_* variables with hyphens kept, root user.
# Asserts on the exit code, the outputs file and the job summary.
#
# Usage: scripts/image-test.sh [NAME=VALUE ...]
#   extra NAME=VALUE pairs are added to the container's environment
#   (e.g. INPUT_DEPLOY-BRANCH=main); they override the defaults below.
#
# Environment: IMAGE, STORAGE_DRIVER, DORA_ACTION_BIN (see build-image.sh),
#   EVENT_FIXTURE (default: examples/workflow_run.json).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE="${IMAGE:-dora-action:test}"
export IMAGE
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
fixture="${EVENT_FIXTURE:-examples/workflow_run.json}"

die() { echo "image-test: FAIL: $*" >&2; exit 1; }

[[ -s ${fixture} ]] || die "event fixture ${fixture} missing"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"

sudo=()
[[ ${EUID} -eq 0 ]] || sudo=(sudo)
buildah=("${sudo[@]}" buildah --storage-driver "${STORAGE_DRIVER}")

./scripts/build-image.sh

work="$(mktemp -d)"
ctr=""
cleanup() {
    if [[ -n ${ctr} ]]; then
        "${buildah[@]}" rm "${ctr}" >/dev/null 2>&1 || true
    fi
    "${sudo[@]}" rm -rf "${work}"
}
trap cleanup EXIT

# The runner's layout: _github_workflow, _runner_file_commands, _github_home
# and the workspace are bind-mounted at these paths.
mkdir -p "${work}/workflow" "${work}/file_commands" "${work}/home" "${work}/workspace"
cp "${fixture}" "${work}/workflow/event.json"
id="$(cat /proc/sys/kernel/random/uuid)"
output="file_commands/set_output_${id}"
summary="file_commands/step_summary_${id}"
: >"${work}/${output}"
: >"${work}/${summary}"
: >"${work}/file_commands/set_env_${id}"
: >"${work}/file_commands/add_path_${id}"

repo="$(jq -r '.repository.full_name // "octo-org/octo-repo"' "${fixture}")"
sha="$(jq -r '.workflow_run.head_sha // "0000000000000000000000000000000000000000"' "${fixture}")"

env_args=(
    --env "HOME=/github/home"
    --env "CI=true"
    --env "GITHUB_ACTIONS=true"
    --env "GITHUB_EVENT_NAME=workflow_run"
    --env "GITHUB_EVENT_PATH=/github/workflow/event.json"
    --env "GITHUB_OUTPUT=/github/${output}"
    --env "GITHUB_STEP_SUMMARY=/github/${summary}"
    --env "GITHUB_ENV=/github/file_commands/set_env_${id}"
    --env "GITHUB_PATH=/github/file_commands/add_path_${id}"
    --env "GITHUB_WORKSPACE=/github/workspace"
    --env "GITHUB_REPOSITORY=${repo}"
    --env "GITHUB_REPOSITORY_OWNER=${repo%%/*}"
    --env "GITHUB_SHA=${sha}"
    --env "GITHUB_REF=refs/heads/main"
    --env "GITHUB_RUN_ID=1"
    --env "GITHUB_RUN_ATTEMPT=1"
    --env "GITHUB_ACTION=dora"
    --env "GITHUB_WORKFLOW=dora-metrics"
    --env "GITHUB_SERVER_URL=https://github.com"
    --env "GITHUB_API_URL=https://api.github.com"
    --env "RUNNER_OS=Linux"
    --env "INPUT_DRY-RUN=true"
    --env "INPUT_MODE=event"
)
for kv in "$@"; do
    [[ ${kv} == *=* ]] || die "argument '${kv}' is not NAME=VALUE"
    env_args+=(--env "${kv}")
done

ctr="$("${buildah[@]}" from --quiet "${IMAGE}")"
echo "==> running /dora-action in ${IMAGE} (container ${ctr})"
set +e
timeout 300 "${buildah[@]}" run --isolation chroot \
    --volume "${work}/workflow:/github/workflow" \
    --volume "${work}/file_commands:/github/file_commands" \
    --volume "${work}/home:/github/home" \
    --volume "${work}/workspace:/github/workspace" \
    --workingdir /github/workspace \
    "${env_args[@]}" \
    "${ctr}" -- /dora-action
rc=$?
set -e

echo "---- GITHUB_OUTPUT ----"
cat "${work}/${output}"
echo "---- GITHUB_STEP_SUMMARY ----"
cat "${work}/${summary}"
echo "-----------------------------"

# Prints the last value of output $1 in GITHUB_OUTPUT file $2, in either the
# `name=value` or the `name<<DELIMITER` ... `DELIMITER` form; fails if absent.
output_value() {
    awk -v want="$1" '
        in_ml {
            if ($0 == delim) { in_ml = 0; if (cur == want) { val = buf; found = 1 }; next }
            buf = (n++ ? buf "\n" : "") $0; next
        }
        /^[^=<]+<</ { i = index($0, "<<"); cur = substr($0, 1, i - 1)
                     delim = substr($0, i + 2); in_ml = 1; buf = ""; n = 0; next }
        /^[^=]+=/   { i = index($0, "=")
                     if (substr($0, 1, i - 1) == want) { val = substr($0, i + 1); found = 1 }; next }
        END { if (found) print val; exit !found }
    ' "$2"
}

[[ ${rc} -eq 0 ]] || die "dora-action exited with ${rc} (expected 0)"
events="$(output_value events "${work}/${output}")" \
    || die "GITHUB_OUTPUT has no 'events' output"
[[ ${events} == 1 ]] || die "output events='${events}', expected 1"
[[ -s ${work}/${summary} ]] || die "GITHUB_STEP_SUMMARY is empty"
grep -q 'Deploy' "${work}/${summary}" \
    || die "GITHUB_STEP_SUMMARY does not mention the workflow name 'Deploy'"

echo "image-test: OK (exit 0, events=1, summary mentions Deploy)"
