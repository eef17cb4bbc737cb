#!/usr/bin/env bash
# Checks packaging/: the systemd unit with `systemd-analyze verify` and the
# sysusers.d file with `systemd-sysusers --dry-run`. Installs nothing. Without
# systemd's tools this fails rather than passing unchecked (.ci/run installs
# the `systemd` package; on Debian/Ubuntu: apt-get install systemd).
#
# systemd-analyze verify exits 0 on unknown keys and bad values (it only
# warns), so any output counts as a failure; and because it insists that
# ExecStart's program exists, the check verifies a copy whose ExecStart names
# a stand-in executable, every other line unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in systemd-analyze systemd-sysusers; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "packaging: $tool is not installed, so packaging/ cannot be checked." >&2
    echo "packaging: install systemd (apt-get install systemd) and run again." >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/axon-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

verify_unit() { # unit file -> prints systemd-analyze's complaints, fails on any
  local out
  printf '#!/bin/sh\n' >"$tmp/axon"; chmod 0755 "$tmp/axon"
  sed "s|^ExecStart=/usr/local/bin/axon |ExecStart=$tmp/axon |" "$1" >"$tmp/axon.service"
  grep -q "^ExecStart=$tmp/axon " "$tmp/axon.service" || { echo "packaging: no ExecStart=/usr/local/bin/axon in $1"; return 1; }
  out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ./axon.service 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}

# The check itself must notice a mistake: a misspelt key has to fail it.
sed 's/^ProtectSystem=/ProtectSystm=/' packaging/axon.service >"$tmp/broken.service"
if verify_unit "$tmp/broken.service" >/dev/null; then
  echo "packaging: systemd-analyze verify did not report a misspelt key; the check is not working" >&2
  exit 1
fi

if ! verify_unit packaging/axon.service; then
  echo "packaging: packaging/axon.service does not verify" >&2
  exit 1
fi
mkdir -p "$tmp/root/etc"
if ! out=$(systemd-sysusers --root="$tmp/root" --dry-run "$PWD/packaging/axon.sysusers" 2>&1); then
  echo "$out"; echo "packaging: packaging/axon.sysusers is invalid" >&2; exit 1
fi
echo "packaging: axon.service and axon.sysusers verified ($(systemd-analyze --version | head -n1))"
