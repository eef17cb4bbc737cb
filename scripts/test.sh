#!/usr/bin/env bash
# The whole test suite: formatting, vet, Go tests (unit + real-server HTTP
# tests), short fuzz runs, and the matrix-js-sdk interop suite.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l cmd internal tests 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
go vet -tags goolm ./...   # the E2EE code of axon notify/bot builds only with goolm

echo "== go test"
go test -tags goolm -count=1 -timeout 15m ./...

echo "== fuzz (short)"
fuzz_time=${AXON_FUZZ_TIME:-10s}
while IFS= read -r line; do
  pkg=${line%% *}; target=${line##* }
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzz_time" "$pkg"
done < <(grep -rl --include='*_test.go' '^func Fuzz' internal | while read -r f; do
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "$f") $t"
  done
done)

if [ -x tests/interop/run.sh ]; then
  echo "== interop (matrix-js-sdk)"
  tests/interop/run.sh
fi
echo "== all tests passed"
