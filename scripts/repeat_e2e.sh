#!/usr/bin/env bash
# Run the end-to-end suite N times in a row (default 20) and count the runs that failed: the check that
# the tests are deterministic.  Extra arguments go to pytest.  Logs of failed runs: out/repeat-e2e/run-K.log
#   scripts/repeat_e2e.sh 20
#   scripts/repeat_e2e.sh 5 -k two_calls
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}; shift || true
py=${PYTHON:-.venv/bin/python}
mkdir -p out/repeat-e2e
failed=0
for i in $(seq "$n"); do
  log=out/repeat-e2e/run-$i.log
  if "$py" -m pytest tests/e2e -q -p no:cacheprovider "$@" >"$log" 2>&1; then
    echo "run $i/$n: ok   ($(tail -n 1 "$log"))"; rm -f "$log"
  else
    failed=$((failed + 1)); echo "run $i/$n: FAIL ($(tail -n 1 "$log")) see $log"
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
  fi
done
echo "e2e: $failed failed of $n runs"
[ "$failed" = 0 ]
