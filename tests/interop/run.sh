#!/usr/bin/env bash
# Runs the matrix-js-sdk interop suite against a freshly built Axon.
#
#   tests/interop/run.sh                 all tests
#   tests/interop/run.sh test/unread.test.js ...   some files (paths relative to tests/interop)
#
# Environment: AXON_INTEROP_BINARY=path uses a prebuilt server instead of
# building one (axon notify / bot are then built with goolm by their test); INTEROP_DEBUG=1 shows SDK logs; AXON_INTEROP_KEEP=1 keeps the
# server's data directory and log; INTEROP_WAIT_MS changes how long a test
# waits for something to arrive through sync (default 20000).
set -euo pipefail

export GOTOOLCHAIN=go1.27.3

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/axon-interop.XXXXXX")"
server_pid=""

cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "${AXON_INTEROP_KEEP:-}" || $status -ne 0 ]]; then
        echo "interop: server log and data kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything the tests run is built here, once, with goolm (the server does
# not need it; axon notify / bot and the mautrix-go peer do): the tests use
# AXON_INTEROP_NOTIFY_BINARY and AXON_INTEROP_GOPEER_BINARY instead of each
# building their own.
mkdir -p "$tmp/bin"
if [[ -n "${AXON_INTEROP_BINARY:-}" ]]; then
    echo "interop: using prebuilt $AXON_INTEROP_BINARY; building the mautrix-go peer" >&2
    cp "$AXON_INTEROP_BINARY" "$tmp/axon"
    (cd "$root" && go build -tags goolm -o "$tmp/bin/" ./tests/interop/gopeer)
else
    echo "interop: building axon and the mautrix-go peer" >&2
    (cd "$root" && go build -tags goolm -o "$tmp/bin/" ./cmd/axon ./tests/interop/gopeer)
    cp "$tmp/bin/axon" "$tmp/axon"
    export AXON_INTEROP_NOTIFY_BINARY="$tmp/bin/axon"
fi
export AXON_INTEROP_GOPEER_BINARY="$tmp/bin/gopeer"

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
base_url="http://127.0.0.1:$port"
mkdir -p "$tmp/data"

echo "interop: starting axon on $base_url (log: $tmp/axon.log)" >&2
AXON_DATA_DIR="$tmp/data" \
AXON_LISTEN="127.0.0.1:$port" \
AXON_SERVER_NAME=interop.test \
AXON_REGISTRATION=open \
AXON_RATE_LIMITS=false \
AXON_REFRESH_TOKENS_ACCESS_TOKEN_LIFETIME=4s \
    "$tmp/axon" serve >"$tmp/axon.log" 2>&1 &
server_pid=$!

for i in $(seq 300); do
    if curl -fsS "$base_url/_matrix/client/versions" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "interop: axon exited before answering /versions:" >&2
        tail -n 50 "$tmp/axon.log" >&2
        exit 1
    fi
    if [[ $i -eq 300 ]]; then
        echo "interop: axon did not answer GET /_matrix/client/versions within 30s" >&2
        tail -n 50 "$tmp/axon.log" >&2
        exit 1
    fi
    sleep 0.1
done

cd "$here"
if [[ ! -d node_modules ]]; then
    echo "interop: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error
fi

if [[ $# -gt 0 ]]; then
    files=("$@")
else
    files=(test/*.test.js)
fi

echo "interop: running ${#files[@]} test files" >&2
# --test-force-exit: matrix-js-sdk leaves each aborted request's timeout timer
# (up to 110 s for /sync) running after stopClient, which would keep every
# test file's process alive that long.
set +e
AXON_INTEROP_BASE_URL="$base_url" AXON_INTEROP_SERVER_NAME=interop.test \
    node --import ./setup.js --test --test-force-exit --test-reporter=spec "${files[@]}"
status=$?
set -e
if [[ $status -ne 0 ]]; then
    echo "interop: tests failed (exit $status); last server log lines:" >&2
    tail -n 30 "$tmp/axon.log" >&2
fi
exit "$status"
