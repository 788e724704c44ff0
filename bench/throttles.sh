#!/usr/bin/env bash
# Issue 25's servers against the release build, one line each with the
# target it is held to (README, "A server that throttles"). Each case
# starts its own sandbox on a free loopback port; a state folder of its own
# keeps the limit runs learn (cases 5 and 6 use it; the others start
# afresh with --no-share and an empty folder).
# Usage: bench/throttles.sh   (about 6 minutes; or bench/rate.sh servers;
# CASES="5 6" bench/throttles.sh for some of the seven only)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
cargo build --release --quiet --bin gcore-iam-bulk
bin=$PWD/target/release/gcore-iam-bulk
key=bench-throttles-key

# sandbox FLAGS...: starts one (stopped on exit), sets $url. Not in a
# command substitution: its subshell's pids+= would be lost, and the
# sandbox left running.
sandbox() {
  local log
  log=$(mktemp -p "$work")
  "$bin" sandbox --listen 127.0.0.1:0 --users 10000 --api-key "$key" "$@" > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q "base URL" "$log" && break
    sleep 0.05
  done
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
}

# rows N [FIRST]: user_id,lang rows for users FIRST..FIRST+N-1.
rows() {
  local n=$1 first=${2:-1}
  echo "user_id,lang"
  for i in $(seq "$first" $((first + n - 1))); do
    if (( i % 2 )); then echo "$i,de"; else echo "$i,en"; fi
  done
}

# apply NAME URL STATE FLAGS...: one run in $work/NAME, its summary JSON there.
apply() {
  local name=$1 url=$2 state=$3
  shift 3
  mkdir -p "$work/$name"
  (cd "$work/$name" && GCORE_API_KEY=$key XDG_STATE_HOME=$state \
    "$bin" apply in.csv --base-url "$url" -q -o results.csv --overwrite \
    --summary-json summary.json "$@" > /dev/null 2> stderr.txt) || true
}

# line CASE TARGET NAME...: the figures of the runs NAME...
line() {
  local case=$1 target=$2
  shift 2
  python3 - "$case" "$target" "$work" "$@" <<'PY'
import json, sys
case, target, work = sys.argv[1:4]
runs = [json.load(open(f"{work}/{name}/summary.json")) for name in sys.argv[4:]]
parts = []
for s in runs:
    requests = s["rows"] + s["retries"]
    rate = s["counts"]["updated"] / s["elapsed_seconds"]
    parts.append(f"{s['counts']['updated']} updated, {s['counts']['failed']} failed, "
                 f"{s['elapsed_seconds']:.1f} s, {rate:.1f} updated/s, "
                 f"{s['throttled']} throttled ({100 * s['throttled'] / max(requests, 1):.1f}%), "
                 f"{s['retries']} retried ({100 * s['retries'] / max(requests, 1):.1f}%), "
                 f"exit {s['exit_code']}")
print(f"| {case} | {target} | {'; '.join(parts)} |")
PY
}

echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%RZ); $(git rev-parse --short HEAD)"
echo "| case | target | measured |"
echo "| --- | --- | --- |"
fresh() { mktemp -d -p "$work"; }
want() { [[ " ${CASES:-1 2 3 4 5 6 7} " == *" $1 "* ]]; }
rows 2000 > "$work/in.csv"

if want 1; then
sandbox --throttle-share 0.02
mkdir -p "$work/noise"; cp "$work/in.csv" "$work/noise/"
apply noise "$url" "$(fresh)" --rate 100 --no-share
line "2% random 429s, unlimited server, --rate 100, 2,000 rows" ">= 80 rows/s" noise
fi

if want 2; then
sandbox --throttle-every 50
mkdir -p "$work/every"; cp "$work/in.csv" "$work/every/"
apply every "$url" "$(fresh)" --rate 100 --max-retries 2 --no-share
line "every 50th user always 429, --rate 100 --max-retries 2, 2,000 rows (40 fail)" "others >= 80 rows/s" every
fi
if want 3; then
sandbox --rate 50 --burst 5 --rate-status 503
mkdir -p "$work/503"; cp "$work/in.csv" "$work/503/"
apply 503 "$url" "$(fresh)" --rate auto --burst 5 --max-retries 10 --no-share
line "503 + Retry-After beyond 50/s, --rate auto, 2,000 rows" "< 10% 503, none failed" 503
fi
if want 4; then
sandbox --quota 600/60
mkdir -p "$work/quota"; rows 1300 > "$work/quota/in.csv"
apply quota "$url" "$(fresh)" --rate 100 --no-share
line "600 per 60 s, 429 without Retry-After, --rate 100, 1,300 rows" "exit 0 in < 180 s" quota
fi
if want 5; then
sandbox --rate 100 --burst 5
state=$(fresh)
mkdir -p "$work/learn" "$work/learned"
cp "$work/in.csv" "$work/learn/"; rows 2000 2001 > "$work/learned/in.csv"
apply learn "$url" "$state" --rate auto --burst 5 --max-retries 10
apply learned "$url" "$state" --rate auto --burst 5 --max-retries 10
line "a second run after a first learned 100/s, --rate auto, 2,000 rows each" "second >= 90 rows/s" learn learned
fi
if want 6; then
sandbox --rate 100 --burst 5
state=$(fresh)
mkdir -p "$work/a" "$work/b"
rows 3000 1 > "$work/a/in.csv"; rows 3000 3001 > "$work/b/in.csv"
apply a "$url" "$state" --rate 150 --burst 5 --max-retries 10 &
sleep 1
apply b "$url" "$state" --rate 150 --burst 5 --max-retries 10
wait
line "two runs of one account at once against 100/s, --rate 150, 3,000 rows each, 1 s apart" ">= 85 together, each >= 35, < 3% 429" a b
fi
if want 7; then
sandbox --rate 50 --burst 5 --rate-status 503 --no-retry-after
mkdir -p "$work/overload"; cp "$work/in.csv" "$work/overload/"
apply overload "$url" "$(fresh)" --rate 150 --burst 5 --no-share
line "503 without Retry-After beyond 50/s (fails under load), --rate 150, 2,000 rows" "< 10% retried, none failed" overload
fi
