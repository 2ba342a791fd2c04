#!/usr/bin/env bash
# Installs what the tests need, builds everything (warnings are errors) and runs every test.
# Used by the README and by .ci/run. Runs unattended (no stdin); under CI=true nothing may be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export CRM_KILL_ROUNDS="${CRM_KILL_ROUNDS:-3}"

# Debian packages of the real servers the tests start (SMTP, IMAP, ERP, ...). Add to this list
# when a test needs another one; tests fail (never skip) under CI=true when a server is missing.
apt_packages=(python3-aiosmtpd)
need_apt=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  fi
fi

dotnet build CrmEngine.sln -c Release -nologo -v minimal

results="$(mktemp -d)"
set +e
dotnet test CrmEngine.sln -c Release --no-build -nologo -v minimal \
  --logger "trx" --results-directory "$results" 2>&1 | tee "$results/console.txt"
status=${PIPESTATUS[0]}
set -e

# One plain closing line summed over every test project: "N passed, N failed, N skipped".
p=0; f=0; s=0
for trx in $(find "$results" -name '*.trx'); do
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
  get() { v="$(echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p")"; echo "${v:-0}"; }
  p=$((p + $(get passed))); f=$((f + $(get failed) + $(get error))); s=$((s + $(get notExecuted)))
done
echo "tests: $p passed, $f failed, $s skipped"
exit "$status"
