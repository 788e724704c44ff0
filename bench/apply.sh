#!/usr/bin/env bash
# Measures `apply` against the local sandbox, in one run, and prints a table
# (issue 4, "Speed"):
#   1. loopback, no latency, --rate 0 --concurrency 64, ROWS rows: the tool's
#      rows/s next to a bare reqwest loop (examples/sandbox_load.rs) sending
#      the very same requests (same user IDs, bodies, order, headers, 64
#      kept-alive connections) to the same sandbox, alternating, REPEATS times;
#      once with realistic rows (examples/gen_users.rs) and once with
#      `user_id,lang` rows (the smallest body). Target: tool >= 90% of bare.
#   2. sandbox --latency-ms 50, --concurrency 64 --rate 0, LATENCY_ROWS rows:
#      rows/s against the ideal 64 / 0.05 s = 1280. Target: >= 95%.
#   3. tool --rate 200 --burst B against a sandbox --rate 200 --burst B, for
#      each B in BURSTS (default 10), RATE_ROWS rows, RATE_REPEATS times with a
#      fresh sandbox each: the achieved rate (target within 2% of 200) and the
#      429s the sandbox answered (target 0). Then the tool's default --burst 1
#      against a sandbox without a limit: the rate's precision alone. (A burst
#      of 1 on both sides has no slack at all: any jitter on the way makes a
#      request arrive a hair early, and the sandbox answers 429; see README.)
#   4. peak RSS (/usr/bin/time %M) of a BIG_ROWS-row run, --rate 0
#      --concurrency 64. Target: under 50 MiB, flat (compared with scenario 1).
#
# Scenario 1 also runs the bare loop on hyper's own client (CLIENT=hyper:
# the same requests without reqwest's layers), a reference for what of the
# bare loop's CPU is reqwest's. It also gives the CPU time per row (user +
# sys over rows) of the tool (the whole process, from /usr/bin/time) and of the bare loop (its
# requests alone, as it measures them: reading the bodies first is not
# sending), and their ratio (issue 12's target: the tool within 1.25x the
# bare loop); then the tool's sending alone: its CPU less that of its dry
# run of the same file (reading, checking, writing the results). Both send
# from a one-thread runtime (CLIENT_THREADS=per-core for the bare loop's
# worker per core). PIN=1 pins the sandbox
# to core 0 and the tool and the bare loop to core 1 (taskset), so that
# they do not share a core. The conditions of the run are printed with the
# table: load average, the CPU time stolen by the hypervisor (from
# /proc/stat, over the whole benchmark), the allocator and any MIMALLOC_*
# variables, so that a slow run can be told from a slow machine.
#
# Usage: bench/apply.sh            (about 3 minutes on the 2-core machine)
# Smaller, for a quick check: ROWS=10000 LATENCY_ROWS=2000 BIG_ROWS=100000 bench/apply.sh
#
# The tool's rows/s is its --summary-json `rows_per_second`: rows sent per
# second from the moment the results writer starts (after the whole-file check)
# to the last row written (a run under half a second has none: its rows over
# its `elapsed_seconds` then). The "wall" figure divides by the process's whole
# elapsed time instead (start-up and the check passes included). The bare
# loop times itself from its first request to its last answer.
#
# Everything runs on 127.0.0.1 in a temporary directory that is removed at the
# end; every sandbox started is stopped (by its process ID) on exit. Every run
# is bounded by `timeout`. Needs curl and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-100000}
REPEATS=${REPEATS:-3}
LATENCY_ROWS=${LATENCY_ROWS:-20000}
LATENCY_MS=${LATENCY_MS:-50}
RATE=${RATE:-200}
RATE_ROWS=${RATE_ROWS:-2000}
RATE_REPEATS=${RATE_REPEATS:-3}
BURSTS=${BURSTS:-"10"}
BIG_ROWS=${BIG_ROWS:-1000000}
CONCURRENCY=64
KEY=bench-key
PIN=${PIN:-0}
if [[ $PIN == 1 ]]; then
  pin_server=(taskset -c 0)
  pin_client=(taskset -c 1)
else
  pin_server=()
  pin_client=()
fi

# steal_ticks: the hypervisor's stolen CPU ticks and all ticks so far.
steal_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t }' /proc/stat; }
RUN_CAP=300 # seconds, for any one run of the tool or the bare loop

bin=target/release/gcore-iam-bulk
gen=target/release/examples/gen_users
bare=target/release/examples/sandbox_load

work=$(mktemp -d)
sandboxes=()
cleanup() {
  local pid
  for pid in "${sandboxes[@]}"; do
    kill -TERM "$pid" 2> /dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "error: bench/apply.sh line $LINENO failed" >&2' ERR

note() { printf '%s\n' "$*" >&2; }
die() {
  note "error: $*"
  exit 1
}

# start_sandbox NAME ARGS...: starts a sandbox on a free loopback port, waits
# (at most 30 s) until it answers, and sets $url and $sandbox_pid.
start_sandbox() {
  local name=$1
  shift
  "${pin_server[@]+"${pin_server[@]}"}" "$bin" sandbox --listen 127.0.0.1:0 --api-key "$KEY" "$@" \
    > "$work/$name.sandbox.out" 2> "$work/$name.sandbox.err" &
  sandbox_pid=$!
  sandboxes+=("$sandbox_pid")
  url=
  local i
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$sandbox_pid" 2> /dev/null; then
      cat "$work/$name.sandbox.err" >&2
      die "the sandbox ($name) exited"
    fi
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/$name.sandbox.out" | head -n 1 || true)
    if [[ -n $url ]] && curl -sf --max-time 2 "$url/sandbox/stats" > /dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "the sandbox ($name) did not answer within 30 s"
}

# stop_sandbox: SIGTERM to $sandbox_pid, then at most 5 s for it to exit.
stop_sandbox() {
  kill -TERM "$sandbox_pid" 2> /dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$sandbox_pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -KILL "$sandbox_pid" 2> /dev/null || true
  wait "$sandbox_pid" 2> /dev/null || true
  local kept=() pid
  for pid in "${sandboxes[@]}"; do
    [[ $pid == "$sandbox_pid" ]] || kept+=("$pid")
  done
  sandboxes=("${kept[@]+"${kept[@]}"}")
}

# A number from the tool's pretty-printed summary JSON: json_num KEY FILE.
json_num() {
  sed -n "s/^ *\"$1\": *\([-0-9.eE+]*\),\{0,1\}\$/\1/p" "$2" | head -n 1
}

# The PATCH answers with status $1 the sandbox counted (0 when none).
patch_count() {
  local n
  n=$(curl -sf --max-time 5 "$url/sandbox/stats" | grep -o '"PATCH":{[^}]*}' |
    grep -o "\"$1\":[0-9]*" | cut -d: -f2 || true)
  echo "${n:-0}"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# verdict CONDITION TARGET: "met (TARGET)" or "NOT met (TARGET)"; CONDITION is awk.
verdict() {
  if awk "BEGIN { exit !($1) }"; then echo "met ($2)"; else echo "NOT met ($2)"; fi
}

# run_tool NAME INPUT ARGS...: one `apply` under /usr/bin/time; sets
# $tool_rps (summary), $tool_wall_rps, $tool_rss_kib, $tool_cpu_us (CPU
# microseconds per row, user + sys), $tool_rc.
run_tool() {
  local name=$1 input=$2
  shift 2
  tool_rc=0
  GCORE_API_KEY=$KEY timeout "$RUN_CAP" /usr/bin/time -f '%e %M %U %S' -o "$work/$name.time" \
    "${pin_client[@]+"${pin_client[@]}"}" "$bin" apply "$input" --base-url "$url" -q -o "$work/$name.results.csv" \
    --summary-json "$work/$name.summary.json" "$@" 2> "$work/$name.stderr" || tool_rc=$?
  if [[ ! -s $work/$name.summary.json ]]; then
    cat "$work/$name.stderr" >&2
    die "apply ($name) wrote no summary (exit $tool_rc)"
  fi
  [[ $tool_rc == 0 ]] || note "warning: apply ($name) exited $tool_rc: $(tail -n 3 "$work/$name.stderr")"
  local wall rows user sys
  read -r wall tool_rss_kib user sys < "$work/$name.time"
  rows=$(json_num rows "$work/$name.summary.json")
  tool_cpu_us=$(calc %.2f "1000000 * ($user + $sys) / $rows")
  tool_rps=$(json_num rows_per_second "$work/$name.summary.json")
  # A run under half a second says no rows/s (null): rows over its time.
  if [[ -z $tool_rps ]]; then
    local rows elapsed
    rows=$(json_num rows "$work/$name.summary.json")
    elapsed=$(json_num elapsed_seconds "$work/$name.summary.json")
    tool_rps=$(calc %.1f "$rows / $elapsed")
  fi
  tool_wall_rps=$(calc %.1f "$rows / $wall")
  rm -f "$work/$name.results.csv"
}

# run_bare NAME ROWS BODIES: the bare loop; sets $bare_rps and $bare_cpu_us
# (the CPU of its requests alone, as it measures it: reading BODIES first is
# not part of sending).
run_bare() {
  local name=$1 rows=$2 bodies=$3 ok other seconds
  CLIENT=${CLIENT:-reqwest} timeout "$RUN_CAP" \
    "${pin_client[@]+"${pin_client[@]}"}" "$bare" "$CONCURRENCY" "$rows" "$url" "$KEY" "$bodies" \
    > "$work/$name.bare.out" 2>&1 || {
    cat "$work/$name.bare.out" >&2
    die "the bare loop ($name) failed"
  }
  # "N PATCH answered 200 (M other) in S s with W workers: R PATCH/s"
  read -r ok other seconds < <(awk '/PATCH answered/ { gsub(/\(/, "", $5); print $1, $5, $8 }' \
    "$work/$name.bare.out")
  [[ $ok == "$rows" && $other == 0 ]] || note "warning: bare loop ($name): $ok answered 200, $other other"
  bare_rps=$(calc %.1f "$ok / $seconds")
  bare_cpu_us=$(awk '/client CPU while sending/ { print $(NF - 3) }' "$work/$name.bare.out")
}

# run_dry NAME INPUT: the tool's dry run of INPUT (reading, checking and
# writing the results, nothing sent); sets $dry_cpu_us.
run_dry() {
  local name=$1 input=$2 user sys rows
  /usr/bin/time -f '%U %S' -o "$work/$name.dry.time" "${pin_client[@]+"${pin_client[@]}"}" \
    "$bin" apply "$input" --dry-run -q -o "$work/$name.dry.csv" --summary-json "$work/$name.dry.json" \
    > /dev/null 2>&1 || true
  read -r user sys < "$work/$name.dry.time"
  rows=$(json_num rows "$work/$name.dry.json")
  dry_cpu_us=$(calc %.2f "1000000 * ($user + $sys) / $rows")
  rm -f "$work/$name.dry.csv"
}

# ---------------------------------------------------------------------------
note "building (release)..."
cargo build --release --quiet --bin gcore-iam-bulk --examples
load_before=$(uptime)
read -r steal_before total_before < <(steal_ticks)
started=$(date +%s)
rows_table=()
row() { rows_table+=("$(printf '%-42s | %-34s | %-26s | %-7s | %s' "$@")"); }

# 1. Loopback, no latency: the tool next to the bare loop -------------------
note "1. loopback, $ROWS rows, tool and bare loop alternating, $REPEATS times each..."
"$gen" "$ROWS" > "$work/full.csv"
"$gen" "$ROWS" --lang-only > "$work/lang.csv"
start_sandbox loopback --users "$ROWS"
for kind in full lang; do
  # The bodies the tool sends, from a dry run: the bare loop sends these.
  "$bin" validate "$work/$kind.csv" -o "$work/$kind.bodies.csv" -q 2> /dev/null
  tools=() walls=() bares=() tool_cpus=() bare_cpus=() dry_cpus=() hyper_cpus=()
  for ((i = 1; i <= REPEATS; i++)); do
    run_tool "loop-$kind-$i" "$work/$kind.csv" --rate 0 --concurrency "$CONCURRENCY"
    tools+=("$tool_rps") walls+=("$tool_wall_rps") tool_cpus+=("$tool_cpu_us")
    loop_rss_kib=$tool_rss_kib
    run_bare "loop-$kind-$i" "$ROWS" "$work/$kind.bodies.csv"
    bares+=("$bare_rps") bare_cpus+=("$bare_cpu_us")
    run_dry "loop-$kind-$i" "$work/$kind.csv"
    dry_cpus+=("$dry_cpu_us")
    note "   $kind #$i: tool $(calc %.0f "$tool_rps") rows/s (wall $(calc %.0f "$tool_wall_rps")), $tool_cpu_us us CPU/row (its dry run $dry_cpu_us); bare $(calc %.0f "$bare_rps") rows/s, $bare_cpu_us us CPU/row"
    # The same loop on hyper's own client: what of the bare loop is reqwest's.
    CLIENT=hyper run_bare "hyper-$kind-$i" "$ROWS" "$work/$kind.bodies.csv"
    hyper_cpus+=("$bare_cpu_us")
    note "   $kind #$i: the same loop on hyper alone: $bare_cpu_us us CPU/row"
  done
  t=$(median "${tools[@]}") w=$(median "${walls[@]}") b=$(median "${bares[@]}")
  ratio=$(calc %.1f "100 * $t / $b")
  label="realistic rows"
  [[ $kind == lang ]] && label="user_id,lang rows"
  row "1. loopback, $ROWS $label" \
    "tool $(calc %.0f "$t") rows/s ($(minmax "${tools[@]}"))" \
    "bare $(calc %.0f "$b") ($(minmax "${bares[@]}"))" \
    "$ratio%" "$(verdict "$ratio >= 90" ">= 90%")"
  row "   same, tool by wall time" "tool $(calc %.0f "$(median "${walls[@]}")") rows/s" \
    "bare $(calc %.0f "$b")" "$(calc %.1f "100 * $w / $b")%" "(start-up and check included)"
  tc=$(median "${tool_cpus[@]}") bc=$(median "${bare_cpus[@]}")
  cpu_ratio=$(calc %.2f "$tc / $bc")
  row "   same, CPU per row (user + sys)" "tool $tc us/row" "bare $bc us/row" \
    "${cpu_ratio}x" "$(verdict "$cpu_ratio <= 1.25" "<= 1.25x")"
  # The tool's sending alone: its CPU less that of its dry run of the file.
  dc=$(median "${dry_cpus[@]}")
  send_cpu=$(calc %.2f "$tc - $dc")
  row "   same, the tool's sending alone" "tool $send_cpu us/row (dry run $dc)" "bare $bc us/row" \
    "$(calc %.2f "$send_cpu / $bc")x" "(tool less its dry run)"
  hc=$(median "${hyper_cpus[@]}")
  row "   same, the bare loop on hyper alone" "hyper $hc us/row" "bare $bc us/row" \
    "$(calc %.2f "$hc / $bc")x" "(reference: reqwest's share)"
done
rm -f "$work/full.csv" "$work/lang.csv" "$work"/*.bodies.csv
stop_sandbox

# 2. 50 ms latency ------------------------------------------------------------
ideal=$(calc %.0f "$CONCURRENCY * 1000 / $LATENCY_MS")
note "2. --latency-ms $LATENCY_MS, $LATENCY_ROWS rows (ideal $ideal rows/s)..."
"$gen" "$LATENCY_ROWS" > "$work/latency.csv"
"$bin" validate "$work/latency.csv" -o "$work/latency.bodies.csv" -q 2> /dev/null
start_sandbox latency --users "$LATENCY_ROWS" --latency-ms "$LATENCY_MS"
run_tool latency "$work/latency.csv" --rate 0 --concurrency "$CONCURRENCY"
run_bare latency "$LATENCY_ROWS" "$work/latency.bodies.csv"
stop_sandbox
note "   tool $(calc %.1f "$tool_rps") rows/s, bare $(calc %.1f "$bare_rps") rows/s"
share=$(calc %.1f "100 * $tool_rps / $ideal")
row "2. latency $LATENCY_MS ms, $LATENCY_ROWS rows" "tool $(calc %.0f "$tool_rps") rows/s" \
  "ideal $ideal" "$share%" "$(verdict "$share >= 95" ">= 95%")"
row "   same, bare loop (the sandbox's ceiling)" "bare $(calc %.0f "$bare_rps") rows/s" \
  "ideal $ideal" "$(calc %.1f "100 * $bare_rps / $ideal")%" "(reference)"

# 3. Rate precision -----------------------------------------------------------
"$gen" "$RATE_ROWS" > "$work/rate.csv"
for burst in $BURSTS; do
  # A fresh sandbox (a full bucket, stats from zero) for every run; the
  # outcome varies from run to run, so each is shown and the worst is judged.
  rates=() counts=() worst=0 all_429=0
  for ((i = 1; i <= RATE_REPEATS; i++)); do
    note "3. --rate $RATE --burst $burst on both sides, $RATE_ROWS rows, #$i..."
    start_sandbox "rate-$burst-$i" --users "$RATE_ROWS" --rate "$RATE" --burst "$burst"
    run_tool "rate-$burst-$i" "$work/rate.csv" --rate "$RATE" --burst "$burst" \
      --concurrency "$CONCURRENCY"
    throttled=$(patch_count 429)
    stop_sandbox
    note "   $(calc %.2f "$tool_rps") rows/s, the sandbox answered $throttled 429s"
    rates+=("$(calc %.1f "$tool_rps")") counts+=("$throttled")
    off=$(calc %.2f "100 * ($tool_rps - $RATE) / $RATE")
    worst=$(calc %.2f "(($off) * ($off) > ($worst) * ($worst)) ? ($off) : ($worst)")
    all_429=$((all_429 + throttled))
  done
  row "3. rate $RATE, burst $burst, $RATE_ROWS rows" "$(IFS=/ && echo "${rates[*]}") rows/s" \
    "$RATE" "$worst%" "$(verdict "$worst <= 2 && $worst >= -2" "within 2%, every run")"
  row "   429s the sandbox answered, per run" "$(IFS=/ && echo "${counts[*]}")" "0" "" \
    "$(verdict "$all_429 == 0" "0, every run")"
done

rates=() worst=0
for ((i = 1; i <= RATE_REPEATS; i++)); do
  note "3. --rate $RATE --burst 1, sandbox without a limit, $RATE_ROWS rows, #$i..."
  start_sandbox "rate-1-$i" --users "$RATE_ROWS"
  run_tool "rate-1-$i" "$work/rate.csv" --rate "$RATE" --burst 1 --concurrency "$CONCURRENCY"
  stop_sandbox
  note "   $(calc %.2f "$tool_rps") rows/s"
  rates+=("$(calc %.1f "$tool_rps")")
  off=$(calc %.2f "100 * ($tool_rps - $RATE) / $RATE")
  worst=$(calc %.2f "(($off) * ($off) > ($worst) * ($worst)) ? ($off) : ($worst)")
done
row "3. rate $RATE, burst 1, no server limit" "$(IFS=/ && echo "${rates[*]}") rows/s" \
  "$RATE" "$worst%" "$(verdict "$worst <= 2 && $worst >= -2" "within 2%, every run")"

# 4. Peak memory of a big run ---------------------------------------------------
note "4. $BIG_ROWS rows, peak RSS..."
"$gen" "$BIG_ROWS" > "$work/big.csv"
start_sandbox big --users "$BIG_ROWS"
run_tool big "$work/big.csv" --rate 0 --concurrency "$CONCURRENCY"
stop_sandbox
rm -f "$work/big.csv"
rss=$(calc %.1f "$tool_rss_kib / 1024")
row "4. peak RSS, $BIG_ROWS rows" "$rss MiB ($(calc %.0f "$tool_rps") rows/s)" \
  "$(calc %.1f "$loop_rss_kib / 1024") MiB at $ROWS rows" "" \
  "$(verdict "$rss < 50" "< 50 MiB")"

# ---------------------------------------------------------------------------
echo "apply benchmark, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $(($(date +%s) - started)) s"
echo "load before: ${load_before#*load average: }; after: $(uptime | sed 's/.*load average: //')"
read -r steal_after total_after < <(steal_ticks)
mimalloc_vars=$(env | grep '^MIMALLOC_' | tr '\n' ' ' || true)
echo "stolen by the hypervisor during the run: $(calc %.2f "100 * ($steal_after - $steal_before) / ($total_after - $total_before + 1)")% of CPU time"
echo "allocator: mimalloc v2 (tool and bare loop); MIMALLOC_* variables: ${mimalloc_vars:-none}; pinned: $([[ $PIN == 1 ]] && echo "sandbox on core 0, client on core 1" || echo no)"
printf '%-42s | %-34s | %-26s | %-7s | %s\n' figure measured "reference" ratio target
printf '%s\n' "${rows_table[@]}"
