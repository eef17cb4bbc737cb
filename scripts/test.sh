#!/usr/bin/env bash
# The whole test suite: formatting, vet, Go tests (unit + real-server HTTP
# tests, and every Fuzz target's seed corpus, which `go test` runs as ordinary
# tests), the packaging checks, and the matrix-js-sdk interop suite. Each
# stage's wall time is printed at the end.
#
# Environment:
#   AXON_FUZZ_TIME=5s   also fuzz each Fuzz target for that long (.ci/run sets
#                       it); unset, the targets run only on their seed corpora.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."

stages=()
stage_name=""
stage_start=0
suite_start=$(date +%s)
stage() {
  local now; now=$(date +%s)
  if [ -n "$stage_name" ]; then stages+=("$(printf '%-28s %4ds' "$stage_name" $((now - stage_start)))"); fi
  stage_name=$1; stage_start=$now
  [ -n "$stage_name" ] && echo "== $stage_name"
  return 0
}
report() {
  local status=$?
  stage ""
  echo "== stage times"
  printf '  %s\n' "${stages[@]}"
  printf '  %-28s %4ds\n' total $(($(date +%s) - suite_start))
  [ $status -eq 0 ] || echo "== FAILED in the stage above (exit $status)"
}
trap report EXIT

stage "gofmt"
unformatted=$(gofmt -l cmd internal tests 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

stage "go vet"
go vet -tags goolm ./...   # the E2EE code of axon notify/bot builds only with goolm
go vet ./...               # and the stub that replaces it without the tag

stage "go test"
# Also runs each Fuzz target on its seed corpus (f.Add + testdata/fuzz).
go test -tags goolm -count=1 -timeout 15m ./...

if [ -n "${AXON_FUZZ_TIME:-}" ]; then
  stage "fuzz ($AXON_FUZZ_TIME per target)"
  # One instrumented test binary per package (not one build per target),
  # run from the package directory so that testdata/fuzz is found; new
  # interesting inputs go to the same cache directory `go test -fuzz` uses.
  fuzz_bin=$(mktemp -d "${TMPDIR:-/tmp}/axon-fuzz.XXXXXX")
  fuzz_cache="$(go env GOCACHE)/fuzz"
  for dir in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | xargs -r -n1 dirname | sort -u); do
    pkg=$(go list "./$dir")
    bin="$fuzz_bin/$(echo "$pkg" | tr / _).test"
    go test -c -fuzz . -o "$bin" "./$dir"
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort); do
      echo "-- $pkg $target"
      (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$AXON_FUZZ_TIME" \
        -test.fuzzcachedir "$fuzz_cache/$pkg")
    done
  done
  rm -rf "$fuzz_bin"
fi

stage "packaging"
scripts/check-packaging.sh

if [ -x tests/interop/run.sh ]; then
  stage "interop (matrix-js-sdk)"
  tests/interop/run.sh
fi
stage ""
echo "== all tests passed"
