#!/usr/bin/env bash
# The adaptive rate against a sandbox that allows SERVER_RATE requests a
# second (burst 5): the tool at --rate 150 (above the server's limit), at
# --rate auto and at --rate 0 (no limit until a 429), ROWS rows each. Prints
# rows/s, the share of the server's rate, the 429s and the rate the run
# ended at.
# Usage: bench/rate.sh   (ROWS=10000 SERVER_RATE=100 by default; about 6 minutes;
# ROWS=2000 for a quick look)
#        bench/rate.sh servers   (issue 25's servers, one line each, with its
# target; about 6 minutes): random 429s, throttled users, 503s, a quota
# window without Retry-After, a second run after a first learned the limit,
# two runs of one account at once.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = servers ]; then
  exec bench/throttles.sh
fi
rows=${ROWS:-10000}
server_rate=${SERVER_RATE:-100}
work=$(mktemp -d)
sandbox_pid=""
trap '[ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release --quiet --bin gcore-iam-bulk
bin=target/release/gcore-iam-bulk
key=bench-rate-key
"$bin" sandbox --listen 127.0.0.1:0 --users "$rows" --api-key "$key" \
  --rate "$server_rate" --burst 5 > "$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 50); do
  grep -q "base URL" "$work/sandbox.log" && break
  sleep 0.1
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sandbox.log" | head -1)
{
  echo "user_id,lang"
  for i in $(seq "$rows"); do
    if (( i % 2 )); then echo "$i,de"; else echo "$i,en"; fi
  done
} > "$work/in.csv"
echo "sandbox: $server_rate requests/s, burst 5; $rows rows; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-26s %9s %9s %10s %6s %12s\n' "tool" "elapsed" "rows/s" "of server" "429s" "rate ended"
for flags in "--rate 150 --burst 5" "--rate auto --burst 5" "--rate 0 --burst 5"; do
  # shellcheck disable=SC2086
  GCORE_API_KEY=$key "$bin" apply "$work/in.csv" --base-url "$url" $flags --max-retries 10 \
    -q -o "$work/results.csv" --overwrite --summary-json "$work/summary.json" > /dev/null 2>&1 || true
  python3 - "$work/summary.json" "$flags" "$server_rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rate = s["rows_per_second"] or 0
ended = s["rate_ended_at"]
print(f"{sys.argv[2]:<26} {s['elapsed_seconds']:8.1f}s {rate:9.1f} {100 * rate / float(sys.argv[3]):9.1f}% "
      f"{s['throttled']:6d} {('%.1f/s' % ended) if ended else 'no limit':>12}")
PY
done
