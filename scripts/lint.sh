#!/usr/bin/env bash
# Lint: ruff (ruff.toml) and mypy (mypy.ini) on the packages below, with no per-package exemptions.
# ./run test (and CI) runs this before pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VOICEAGENT_VENV:-$PWD/.venv}/bin
[ -x "$BIN/ruff" ] && [ -x "$BIN/mypy" ] || { echo "lint: ruff/mypy not in $BIN (./run test installs requirements-dev.txt)" >&2; exit 2; }
TARGETS=(voiceagent/observability voiceagent/telephony voiceagent/calls voiceagent/dialog voiceagent/speech voiceagent/speech_server voiceagent/config voiceagent/records voiceagent/api voiceagent/api_cli.py voiceagent/tools_cli.py voiceagent/webhooks voiceagent/schedules voiceagent/jobs voiceagent/integrations)
status=0
"$BIN/ruff" check "${TARGETS[@]}" || status=1
"$BIN/mypy" "${TARGETS[@]}" || status=1
exit $status
