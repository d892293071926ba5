#!/usr/bin/env bash
# The shell path dora-action replaces, as benchmarked by `cargo bench --bench
# shell` (benches/shell.rs): the original dora-metrics workflow's steps — aws
# CLI, a kubeconfig as `aws eks update-kubeconfig` writes it, kubectl, curl,
# jq — extended to make the same API calls as the action in each mode, so the
# two are timed doing the same work and must leave the same Pushgateway groups.
#
# Usage: dora-metrics.sh event|workflows|cluster
#
# Environment (the action's inputs, under the names the old workflow used):
#   CLUSTER_NAME, AWS_REGION  EKS cluster: Pushgateway through the API server's
#                             service proxy (PUSHGATEWAY_SERVICE, default
#                             observability/pushgateway:9091)
#   PUSHGATEWAY_URL           else: the Pushgateway directly
#   GITHUB_TOKEN, GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_EVENT_PATH
#   WORKFLOWS                 workflows mode: workflow files, comma separated
#   JOB (dora), ENVIRONMENT (the cluster name, else default), LOOKBACK_DAYS (30)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY[, AWS_SESSION_TOKEN] as
#   aws-actions/configure-aws-credentials leaves them; AWS_ENDPOINT_URL_EKS.
#
# Written to be as quick as a shell path reasonably gets, so the comparison
# flatters it rather than the action:
# - the EKS token is fetched once (`aws eks get-token`) and written into the
#   kubeconfig; the kubeconfig `aws eks update-kubeconfig` writes has an exec
#   plugin instead, which runs `aws eks get-token` again for every kubectl call;
# - no `kubectl port-forward` (and no wait for it): curl reaches the
#   Pushgateway through the service proxy, the path the action uses;
# - one jq per document, not one per field.
# It is a benchmark fixture, not a supported tool: it does not prune, retry,
# or compute Flagger recovery (the scenario has none), and trusts its inputs.
set -euo pipefail

mode="${1:?usage: dora-metrics.sh event|workflows|cluster}"
job="${JOB:-dora}"
repo="${GITHUB_REPOSITORY:?}"
lookback=$((${LOOKBACK_DAYS:-30} * 86400))
work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/dora-metrics.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

# Tokens go to curl in header files, never on a command line.
printf 'Authorization: Bearer %s\n' "${GITHUB_TOKEN:?}" >"${work}/github.header"
gh_get() {
    curl -sS --fail -H "@${work}/github.header" -H 'Accept: application/vnd.github+json' "$@"
}

# ----------------------------------------------------------- EKS, kubeconfig
if [[ -n ${CLUSTER_NAME:-} ]]; then
    region="${AWS_REGION:?}"
    aws eks describe-cluster --name "${CLUSTER_NAME}" --region "${region}" --output json \
        >"${work}/cluster.json"
    IFS=$'\t' read -r status endpoint ca_data arn < <(jq -r \
        '.cluster | [.status, .endpoint, .certificateAuthority.data, .arn] | @tsv' "${work}/cluster.json")
    if [[ ${status} != ACTIVE ]]; then
        echo "::notice::EKS cluster ${CLUSTER_NAME} is ${status}: nothing recorded"
        exit 0
    fi
    token="$(aws eks get-token --cluster-name "${CLUSTER_NAME}" --region "${region}" --output json \
        | jq -r .status.token)"
    echo "::add-mask::${token}"
    # What `aws eks update-kubeconfig` writes, with the token inline.
    export KUBECONFIG="${work}/kubeconfig"
    cat >"${KUBECONFIG}" <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${ca_data}
    server: ${endpoint}
  name: ${arn}
contexts:
- context:
    cluster: ${arn}
    user: ${arn}
  name: ${arn}
current-context: ${arn}
users:
- name: ${arn}
  user:
    token: ${token}
EOF
    printf '%s' "${ca_data}" | base64 -d >"${work}/ca.crt"
    printf 'Authorization: Bearer %s\n' "${token}" >"${work}/kube.header"
    service="${PUSHGATEWAY_SERVICE:-observability/pushgateway:9091}"
    pg="${endpoint}/api/v1/namespaces/${service%%/*}/services/${service#*/}/proxy"
    pg_curl=(curl -sS --fail --cacert "${work}/ca.crt" -H "@${work}/kube.header")
else
    pg="${PUSHGATEWAY_URL:?set CLUSTER_NAME or PUSHGATEWAY_URL}"
    pg_curl=(curl -sS --fail)
fi
environment="${ENVIRONMENT:-${CLUSTER_NAME:-default}}"

# The groups already stored: events found there are not pushed again.
"${pg_curl[@]}" "${pg}/api/v1/metrics" >"${work}/stored.json"

# `@base64` path segments (URL-safe alphabet) take any label value.
b64() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_'; }
# push GROUP_PATH: PUT the exposition on stdin as that group of `job`.
push() {
    "${pg_curl[@]}" -X PUT -H 'Content-Type: text/plain; version=0.0.4' --data-binary @- \
        "${pg}/metrics/job/${job}/$1" >/dev/null
}

# ------------------------------------------------------------ workflow runs
# Shared jq: DORA events of REST runs (newest last) with the recovery and the
# previous success of each, as the action's `annotate` computes them.
# shellcheck disable=SC2016
annotate='
  map(select(.event != "pull_request" and .head_branch == $branch
             and (.conclusion == "success" or .conclusion == "failure"))
      | {id, attempt: .run_attempt, name, branch: .head_branch, sha: .head_sha,
         status: .conclusion, time: (.updated_at | fromdateiso8601),
         committed: (.head_commit.timestamp // null | if . then fromdateiso8601 else null end)})
  | sort_by(.time)
  | reduce .[] as $d ({out: [], prev: null, fail: null};
      if $d.status == "failure" then
        .out += [$d + {prev: .prev}] | .fail = (.fail // $d.time)
      else
        .out += [$d + {prev: .prev, recovery: (if .fail then $d.time - .fail else null end)}]
        | .prev = $d.sha | .fail = null
      end)
  | .out'
# shellcheck disable=SC2016
stored_runs='[$stored[0].data[].labels | select(.job == $job)
  | "\(.repository)|\(.workflow)|\(.run_id)|\(.run_attempt)"]'

# push_runs: events as TSV on stdin (id attempt name branch sha status time
# committed prev recovery); one compare per new success after a success, one PUT each.
push_runs() {
    local id attempt name branch sha status time committed prev recovery changes median
    while IFS=$'\t' read -r id attempt name branch sha status time committed prev recovery; do
        changes="" median=""
        if [[ ${status} == success && -n ${prev} ]]; then
            if [[ ${prev} == "${sha}" ]]; then
                changes=0
            else
                IFS=$'\t' read -r changes median < <(gh_get "${GITHUB_API_URL}/repos/${repo}/compare/${prev}...${sha}" \
                    | jq -r --argjson t "${time}" '
                        .total_commits as $total | [.commits[].commit | (.committer.date // .author.date) | fromdateiso8601
                         | $t - . | select(. >= 0)] | sort as $l | ($l | length) as $n
                        | [$total,
                           (if $n == 0 then "" elif $n % 2 == 1 then $l[($n - 1) / 2]
                            else (($l[$n / 2 - 1] + $l[$n / 2]) / 2 | floor) end)] | @tsv')
            fi
        fi
        labels="source=\"${name}\",status=\"${status}\",ref=\"${branch}\",sha=\"${sha}\",environment=\"${environment}\""
        {
            printf '# TYPE dora_workflow_deploy_event gauge\ndora_workflow_deploy_event{%s} 1\n' "${labels}"
            printf '# TYPE dora_workflow_deploy_timestamp gauge\ndora_workflow_deploy_timestamp{%s} %s\n' "${labels}" "${time}"
            if [[ ${status} == success && -n ${committed} ]]; then
                printf '# TYPE dora_workflow_lead_time_seconds gauge\ndora_workflow_lead_time_seconds{%s} %s\n' \
                    "${labels}" "$((time - committed))"
            fi
            if [[ -n ${median} ]]; then
                printf '# TYPE dora_workflow_change_lead_time_seconds gauge\ndora_workflow_change_lead_time_seconds{%s} %s\n' \
                    "${labels}" "${median}"
            fi
            if [[ -n ${changes} ]]; then
                printf '# TYPE dora_workflow_changes gauge\ndora_workflow_changes{%s} %s\n' "${labels}" "${changes}"
            fi
            if [[ -n ${recovery} ]]; then
                printf '# TYPE dora_workflow_recovery_seconds gauge\ndora_workflow_recovery_seconds{%s} %s\n' "${labels}" "${recovery}"
                printf '# TYPE dora_workflow_rework_timestamp gauge\ndora_workflow_rework_timestamp{%s} %s\n' "${labels}" "${time}"
            fi
        } | push "repository@base64/$(b64 "${repo}")/workflow@base64/$(b64 "${name}")/run_id/${id}/run_attempt/${attempt}"
    done
}

# The TSV line push_runs reads, for events not stored yet.
# shellcheck disable=SC2016
to_tsv='.[] | select(("\($repo)|\(.name)|\(.id)|\(.attempt)") as $k | $seen | index($k) | not)
  | [.id, .attempt, .name, .branch, .sha, .status, .time, (.committed // ""), (.prev // ""),
     (.recovery // "")] | @tsv'

case "${mode}" in
event)
    # The run in the workflow_run payload, with the workflow's recent runs
    # (one list call) for its recovery and its previous success.
    IFS=$'\t' read -r workflow_id branch default_branch since < <(jq -r --argjson lookback "${lookback}" \
        '[.workflow_run.workflow_id, .workflow_run.head_branch, .repository.default_branch,
          (.workflow_run.updated_at | fromdateiso8601 - $lookback | todate)] | @tsv' "${GITHUB_EVENT_PATH:?}")
    gh_get -G "${GITHUB_API_URL}/repos/${repo}/actions/workflows/${workflow_id}/runs" \
        --data-urlencode status=completed --data-urlencode "created=>=${since}" \
        --data-urlencode per_page=100 --data-urlencode "branch=${branch}" >"${work}/runs.json"
    jq -r --arg branch "${default_branch}" --arg repo "${repo}" --arg job "${job}" \
        --slurpfile stored "${work}/stored.json" --slurpfile event "${GITHUB_EVENT_PATH}" "
        ${stored_runs} as \$seen | \$event[0].workflow_run as \$this
        | [.workflow_runs[] | select(.id != \$this.id and .updated_at <= \$this.updated_at)] + [\$this]
        | ${annotate} | [last] | ${to_tsv}" "${work}/runs.json" | push_runs
    ;;
workflows)
    # Every completed run of each workflow in the lookback window, following
    # the Link header's pages.
    since="$(date -u -d "@$(($(date +%s) - lookback))" +%Y-%m-%dT%H:%M:%SZ)"
    default_branch="$(jq -r .repository.default_branch "${GITHUB_EVENT_PATH:?}")"
    : >"${work}/runs.jsonl"
    IFS=',' read -ra workflows <<<"${WORKFLOWS:?}"
    for workflow in "${workflows[@]}"; do
        url="${GITHUB_API_URL}/repos/${repo}/actions/workflows/${workflow}/runs?status=completed&created=%3E%3D${since}&per_page=100&branch=${default_branch}"
        while [[ -n ${url} ]]; do
            gh_get -D "${work}/headers" "${url}" | jq -c '.workflow_runs[]' >>"${work}/runs.jsonl"
            url="$(sed -n 's/^link:.*<\([^>]*\)>; rel="next".*/\1/Ip' "${work}/headers" | tr -d '\r')"
        done
    done
    jq -rs --arg branch "${default_branch}" --arg repo "${repo}" --arg job "${job}" \
        --slurpfile stored "${work}/stored.json" "
        ${stored_runs} as \$seen | group_by(.workflow_id) | map(${annotate}) | add // [] | ${to_tsv}" \
        "${work}/runs.jsonl" | push_runs
    ;;
cluster)
    # Flux Kustomizations with their GitRepositories, Flagger Canaries.
    kubectl get kustomizations --all-namespaces -o json >"${work}/kustomizations.json"
    for ns in $(jq -r '[.items[] | .spec.sourceRef.namespace // .metadata.namespace] | unique[]' \
        "${work}/kustomizations.json"); do
        kubectl get gitrepositories -n "${ns}" -o json
    done | jq -s '[.[].items[]]' >"${work}/gitrepositories.json"
    kubectl get canaries --all-namespaces -o json >"${work}/canaries.json"
    # One line per new revision: namespace name revision sha ready time repository.
    # shellcheck disable=SC2016
    jq -r --slurpfile repos "${work}/gitrepositories.json" --slurpfile stored "${work}/stored.json" --arg job "${job}" '
        [$stored[0].data[].labels | select(.job == $job and .kustomization)
         | "\(.namespace)|\(.kustomization)|\(.revision)"] as $seen
        | .items[] | .metadata as $m | .status.lastAppliedRevision as $rev
        | select($rev and ("\($m.namespace)|\($m.name)|\($rev)" as $k | $seen | index($k) | not))
        | (.status.conditions[] | select(.type == "Ready")) as $ready
        | (.spec.sourceRef.namespace // $m.namespace) as $sns | .spec.sourceRef.name as $sname
        | [$m.namespace, $m.name, $rev,
           ($rev | capture("(^|@sha1:|/)(?<sha>[0-9a-f]{7,64})$").sha // ""),
           ($ready.status == "True"), ($ready.lastTransitionTime | fromdateiso8601),
           ([$repos[0][] | select(.metadata.namespace == $sns and .metadata.name == $sname)
             | .spec.url | capture("github\\.com[:/](?<r>[^/]+/[^/]+?)(\\.git)?/?$").r] | first // "")] | @tsv' \
        "${work}/kustomizations.json" >"${work}/revisions.tsv"
    while IFS=$'\t' read -r ns name revision sha ready time source_repo; do
        labels="source=\"${name}\",sha=\"${sha}\",environment=\"${environment}\",repository=\"${source_repo}\""
        if [[ ${ready} == true ]]; then
            labels+=",status=\"success\",ready=\"true\"" value=1
        else
            labels+=",status=\"not_ready\",ready=\"false\"" value=0
        fi
        lead=""
        if [[ ${ready} == true && -n ${sha} && -n ${source_repo} ]]; then
            committed="$(gh_get "${GITHUB_API_URL}/repos/${source_repo}/commits/${sha}" \
                | jq -r '.commit | (.committer.date // .author.date) | fromdateiso8601')"
            lead=$((time - committed))
        fi
        {
            printf '# TYPE dora_flux_applied_timestamp gauge\ndora_flux_applied_timestamp{%s} %s\n' "${labels}" "${time}"
            printf '# TYPE dora_flux_ready gauge\ndora_flux_ready{%s} %s\n' "${labels}" "${value}"
            if [[ -n ${lead} ]]; then
                printf '# TYPE dora_flux_lead_time_seconds gauge\ndora_flux_lead_time_seconds{%s} %s\n' "${labels}" "${lead}"
            fi
        } | push "namespace/${ns}/kustomization/${name}/revision@base64/$(b64 "${revision}")"
    done <"${work}/revisions.tsv"
    # One line per canary: namespace name phase transition, "new" when its
    # outcome (Succeeded or Failed at that transition) is not stored yet.
    # shellcheck disable=SC2016
    jq -r --slurpfile stored "${work}/stored.json" --arg job "${job}" '
        [$stored[0].data[].labels | select(.job == $job and .transition)
         | "\(.namespace)|\(.canary)|\(.phase)|\(.transition)"] as $seen
        | .items[] | [.metadata.namespace, .metadata.name, .status.phase,
                      (.status.lastTransitionTime | fromdateiso8601)]
        | . + [(.[2] == "Succeeded" or .[2] == "Failed")
               and ("\(.[0])|\(.[1])|\(.[2])|\(.[3])" as $k | $seen | index($k) | not)] | @tsv' \
        "${work}/canaries.json" >"${work}/canaries.tsv"
    while IFS=$'\t' read -r ns name phase transition new; do
        if [[ ${new} == true ]]; then
            status=success
            [[ ${phase} == Failed ]] && status=failure
            printf '# TYPE dora_flagger_canary_timestamp gauge\ndora_flagger_canary_timestamp{source="%s",status="%s",environment="%s"} %s\n' \
                "${name}" "${status}" "${environment}" "${transition}" \
                | push "namespace/${ns}/canary/${name}/phase/${phase}/transition/${transition}"
        fi
        printf '# TYPE dora_flagger_canary_phase gauge\ndora_flagger_canary_phase{source="%s",phase="%s",environment="%s"} 1\n' \
            "${name}" "${phase}" "${environment}" | push "namespace/${ns}/canary/${name}"
    done <"${work}/canaries.tsv"
    ;;
*)
    echo "::error::unknown mode ${mode} (event, workflows or cluster)" >&2
    exit 1
    ;;
esac
