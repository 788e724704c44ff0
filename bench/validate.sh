#!/usr/bin/env bash
# Measures `validate` on a generated file: rows per second and peak memory.
# Usage: bench/validate.sh [ROWS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --bin gcore-iam-bulk --example gen_users
target/release/examples/gen_users "$rows" > "$work/users.csv"
echo "input: $rows rows, $(du -h "$work/users.csv" | cut -f1)"
/usr/bin/time -f "%e %U %S %M" -o "$work/time" \
  target/release/gcore-iam-bulk validate "$work/users.csv" -o "$work/results.csv" --quiet 2> "$work/stderr"
read -r seconds user sys max_kib < "$work/time"
tail -n 2 "$work/stderr"
echo "results: $(du -h "$work/results.csv" | cut -f1)"
# CPU time is the figure for "one core": elapsed time also counts waiting
# for a core when other work shares the machine.
awk -v r="$rows" -v s="$seconds" -v u="$user" -v k="$sys" -v m="$max_kib" \
  'BEGIN { printf "elapsed %.2f s (%.0f rows/s); CPU %.2f s (%.0f rows per CPU-second); peak RSS %.1f MiB\n",
           s, r / s, u + k, r / (u + k), m / 1024 }'
