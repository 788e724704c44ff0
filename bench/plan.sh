#!/bin/sh
# apply --plan against apply of the same 1,000 rows at the same --rate (issue
# 23: within 1.2x), each against a fresh sandbox of the same 1,000 users:
# the rows change every user's company, and three users' groups.
# Usage: bench/plan.sh (after cargo build --release); RATE=50 by default,
# about 45 s. Prints the two times and their ratio.
set -eu
cd "$(dirname "$0")/.."
B=${B:-$PWD/target/release/gcore-iam-bulk}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
RATE=${RATE:-50}
start() {
  $B sandbox --listen 127.0.0.1:0 --users 1000 --api-key bench > sb.out 2>&1 &
  SB=$!
  sleep 1
  URL=$(grep -o 'http://127[0-9.:]*' sb.out | head -1)
}
export GCORE_API_KEY=bench
start
# The rows: every user's company, and the first three administrators out.
$B export -o users.csv -q --base-url "$URL" > /dev/null 2>&1
python3 - <<'PY'
import csv
rows = list(csv.DictReader(open('users.csv', newline='', encoding='utf-8')))
out = csv.writer(open('in.csv', 'w', newline='', encoding='utf-8'))
out.writerow(['user_id', 'company', 'groups'])
moved = 0
for row in rows:
    groups = row['groups']
    if 'Administrators' in groups.split(';') and moved < 3:
        groups, moved = 'Users', moved + 1
    out.writerow([row['user_id'], 'Renamed GmbH', groups])
PY
rm -f in.results.csv* in.plan.csv*
s=$(date +%s.%N); $B apply in.csv --rate $RATE -q -o a.csv --overwrite --base-url $URL > /dev/null 2>&1 || true; e=$(date +%s.%N)
kill $SB; wait $SB 2>/dev/null || true
applied=$(echo "$e - $s" | bc)
start
$B plan in.csv --rate $RATE -q --base-url $URL > /dev/null 2>&1 || true
s=$(date +%s.%N); $B apply --plan in.plan.csv --rate $RATE -q -o p.csv --overwrite --base-url $URL > /dev/null 2>&1 || true; e=$(date +%s.%N)
kill $SB; wait $SB 2>/dev/null || true
planned=$(echo "$e - $s" | bc)
echo "apply: $applied s; apply --plan: $planned s; ratio $(echo "scale=3; $planned / $applied" | bc)"
