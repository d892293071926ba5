#!/usr/bin/env bash
# Renders the job summary of tests/summary_charts.rs (a dry run of workflows
# mode on a month of history) the way GitHub shows it: Mermaid blocks drawn by
# the real Mermaid, Markdown by marked, the page by headless Chromium, into
# docs/summary.png. Needs what scripts/test.sh installs (chromium, and
# @mermaid-js/mermaid-cli in tests/mermaid).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=tests/mermaid/node_modules/.bin
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cargo test --quiet --test summary_charts >/dev/null
cp target/tmp/summary-charts.md "${work}/summary.md"
cat >"${work}/puppeteer.json" <<'JSON'
{"executablePath": "/usr/bin/chromium", "args": ["--no-sandbox", "--disable-gpu"]}
JSON
"${bin}/mmdc" -q -p "${work}/puppeteer.json" -i "${work}/summary.md" -o "${work}/rendered.md"
{
    echo '<!doctype html><meta charset="utf-8"><style>body{font:14px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:960px;margin:24px;color:#1f2328}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:4px 10px}img{max-width:900px}</style>'
    "${bin}/marked" -i "${work}/rendered.md"
} >"${work}/summary.html"
mkdir -p docs
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1000,860 --screenshot="${PWD}/docs/summary.png" \
    "file://${work}/summary.html" 2>/dev/null
echo "wrote docs/summary.png"
