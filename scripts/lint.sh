#!/usr/bin/env bash
# Lint: ruff (ruff.toml) and mypy (mypy.ini) on the packages below. ./run test runs this before pytest.
#   scripts/lint.sh            what CI checks (calls/, dialog/, telephony/events.py: pending, see the configs)
#   scripts/lint.sh --pending  the findings the pending overrides hide, counted per package
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VOICEAGENT_VENV:-$PWD/.venv}/bin
[ -x "$BIN/ruff" ] && [ -x "$BIN/mypy" ] || { echo "lint: ruff/mypy not in $BIN (./run test installs requirements-dev.txt)" >&2; exit 2; }
TARGETS=(voiceagent/telephony voiceagent/calls voiceagent/dialog voiceagent/speech voiceagent/config voiceagent/records voiceagent/api voiceagent/api_cli.py)
if [ "${1:-}" = --pending ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  # the configs without their "Pending" overrides
  awk '/^# Pending/ {skip=1} skip && /^$/ {skip=0; next} !skip' mypy.ini > "$tmp/mypy.ini"
  awk '/^# Pending/ {skip=1} skip && /^$/ {skip=0} !skip' ruff.toml > "$tmp/ruff.toml"
  for pkg in voiceagent/calls voiceagent/dialog voiceagent/telephony/events.py; do
    r=$("$BIN/ruff" check --config "$tmp/ruff.toml" --output-format concise "$pkg" 2>/dev/null | grep -c '^voiceagent/')
    m=$("$BIN/mypy" --config-file "$tmp/mypy.ini" --cache-dir "$tmp/cache" "${TARGETS[@]}" 2>/dev/null | grep -c "^$pkg.*error:")
    echo "$pkg: ruff $r, mypy $m"
  done
  exit 0
fi
status=0
"$BIN/ruff" check "${TARGETS[@]}" || status=1
"$BIN/mypy" "${TARGETS[@]}" || status=1
exit $status
