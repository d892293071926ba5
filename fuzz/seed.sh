#!/bin/sh
# Seeds the fuzz corpora (fuzz/corpus/<target>/, git-ignored) from the test
# fixtures: GitHub's own example payloads, the inputs' documented defaults
# and values, and Flux revisions / Git URLs in every form the action reads.
# Run from anywhere; safe to rerun (files are overwritten, never removed).
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
fixtures="$fuzz/../tests/fixtures"
corpus="$fuzz/corpus"
mkdir -p "$corpus/payload" "$corpus/inputs" "$corpus/labels" "$corpus/cluster"

for dir in workflow_run deployment_status; do
    for f in "$fixtures/$dir"/*.json; do
        cp "$f" "$corpus/payload/${dir}_$(basename "$f")"
    done
done
cp "$fuzz/../examples/workflow_run.json" "$corpus/payload/example_workflow_run.json"

# name=value lines; `\` stands for a newline inside a value.
printf 'mode=auto\njob=dora\nlookback=30d\nretention=90d\ndry-run=false\nfail-on-error=true\npushgateway-service=observability/pushgateway:9091\nkustomizations=flux-system/applications\n' >"$corpus/inputs/defaults"
printf 'mode=workflows\nworkflows=deploy.yml, release.yml\nlookback=1d12h\npushgateway-url=https://pushgateway.example:9091/pg\nenvironment=production\ndeploy-branches=main\\release/*\n' >"$corpus/inputs/workflows"
printf 'mode=cluster\ncluster-name=prod-eks\naws-region=eu-west-1\nrole-to-assume=arn:aws:iam::123456789012:role/dora\ncanary-namespaces=shop, payments\nkustomizations=*\nretention=0\n' >"$corpus/inputs/cluster"
printf 'retention=9223372036854775807s\nlookback=2w\njob=a/b\ngithub-token=ghs_x\n' >"$corpus/inputs/edges"

sha=9f8e7d6c5b4a39281706f5e4d3c2b1a098765432
printf 'main@sha1:%s' "$sha" >"$corpus/cluster/revision"
printf 'refs/heads/release/1.x@sha1:%s' "$sha" >"$corpus/cluster/revision_ref"
printf 'main/%s' "$sha" >"$corpus/cluster/revision_old"
printf 'latest@sha256:3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a3b2c4f8e0c4e1f2a' >"$corpus/cluster/revision_oci"
printf 'https://github.com/octo-org/shop.git' >"$corpus/cluster/url_https"
printf 'ssh://git@github.com/octo-org/shop' >"$corpus/cluster/url_ssh"
printf 'git@ghe.example.com:octo-org/shop.git' >"$corpus/cluster/url_scp"

echo "seeded $(find "$corpus" -type f | wc -l) files under $corpus"
