#!/usr/bin/env bash
# Fresh clone -> `make serve`: seconds until /health answers and until the first /predict answers.
#
#   bash tools/experiments/fresh_serve.sh [PORT]
#
# Clones this checkout's HEAD into a new temporary directory (no .venv: `make serve` creates it, installs torch
# 2.13.0 CPU and tagloop, then starts the web process and its worker), polls /health, sends one single-text
# /predict for a news_topics project, prints both times, then stops `make serve` with SIGINT (Ctrl-C) and checks
# that no tagloop process is left.
set -euo pipefail
port="${1:-9190}"
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work="$(mktemp -d /tmp/tagloop-fresh-serve-XXXXXX)"
git clone -q "$repo" "$work/tagloop"
cd "$work/tagloop"
config="$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' annotation_configs/news_topics.xml)"
body="{\"project\": \"1.1\", \"label_config\": $config, \"tasks\": [{\"id\": 1, \"data\": {\"text\": \"Stocks fell as oil prices rose.\"}}]}"

start=$(date +%s.%N)
setsid make serve PORT="$port" > "$work/serve.log" 2>&1 &
make_pid=$!
health=""
until [ -n "$health" ]; do
    if ! kill -0 "$make_pid" 2>/dev/null; then echo "make serve exited; log: $work/serve.log" >&2; tail -20 "$work/serve.log" >&2; exit 1; fi
    if curl -sf "http://127.0.0.1:$port/health" > /dev/null; then health=$(date +%s.%N); else sleep 0.5; fi
done
code=$(curl -s -o "$work/predict.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --max-time 600 -d "$body" "http://127.0.0.1:$port/predict")
predicted=$(date +%s.%N)
python3 - "$start" "$health" "$predicted" "$code" "$work/predict.json" <<'EOF'
import json, sys
start, health, predicted = (float(x) for x in sys.argv[1:4])
answer = json.load(open(sys.argv[5]))
version = answer.get("model_version") if isinstance(answer, dict) else None
print(f"/health after {health - start:.1f} s, first /predict (HTTP {sys.argv[4]}, {version}) after {predicted - start:.1f} s")
EOF
kill -INT -- -"$make_pid"
for _ in $(seq 60); do kill -0 "$make_pid" 2>/dev/null || break; sleep 0.5; done
left=$(pgrep -f "$work/tagloop/.venv" || true)
echo "after Ctrl-C: ${left:-no tagloop process left}"
