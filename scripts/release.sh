#!/usr/bin/env bash
# Builds release binaries of axon: static (CGO_ENABLED=0), with the pure-Go
# E2EE of axon notify / axon bot (-tags goolm), for linux/amd64 and
# linux/arm64, with -trimpath, into dist/, plus dist/SHA256SUMS.
#
#   scripts/release.sh              version from `git describe --tags --always`
#   AXON_VERSION=0.2.0 scripts/release.sh
#   AXON_RELEASE_ALLOW_DIRTY=1 ...  also from a tree with uncommitted changes
#   AXON_RELEASE_PLATFORMS="linux/amd64" scripts/release.sh   fewer platforms
#
# The version goes into main.version (printed by `axon version`); the commit,
# its time, whether the tree was modified and the build tags are recorded by
# the Go toolchain itself and readable with `go version -m dist/axon-...`
# (runtime/debug.ReadBuildInfo in the binary). -buildvcs=true because GOFLAGS
# may turn the stamp off, and a release without its commit is not traceable.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."

if [ -n "$(git status --porcelain --untracked-files=no)" ] && [ -z "${AXON_RELEASE_ALLOW_DIRTY:-}" ]; then
  echo "release: the work tree has uncommitted changes; commit them or set AXON_RELEASE_ALLOW_DIRTY=1" >&2
  exit 1
fi
version=${AXON_VERSION:-$(git describe --tags --always --dirty)}
platforms=${AXON_RELEASE_PLATFORMS:-linux/amd64 linux/arm64}

rm -rf dist
mkdir -p dist
for platform in $platforms; do
  goos=${platform%/*}; goarch=${platform#*/}
  out="dist/axon-$version-$goos-$goarch"
  echo "release: building $out"
  start=$(date +%s)
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -buildvcs=true -tags goolm \
    -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/axon
  echo "release: $out built in $(($(date +%s) - start))s"

  # What the toolchain recorded must be what a release promises.
  info=$(go version -m "$out")
  for want in "CGO_ENABLED=0" "-tags=goolm" "-trimpath=true" "GOARCH=$goarch" "vcs.revision="; do
    if ! grep -q -- "$want" <<<"$info"; then
      echo "release: $out: build info lacks $want:" >&2; echo "$info" >&2; exit 1
    fi
  done
  # The binary that runs here must say its version (catches -X naming a
  # variable that no longer exists, which the linker ignores silently).
  if [ "$goos/$goarch" = "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" ]; then
    if ! "$out" version | grep -qF -- "$version"; then
      echo "release: '$out version' does not print $version: $("$out" version)" >&2; exit 1
    fi
  fi
done
# Binaries carry BSD and MIT code whose licenses ask to travel with them, and
# MPL-2.0 code whose license says where its source is: ship every license
# file of every module linked into the binary, and Go's own.
{
  echo "Licenses of the code linked into axon $version (see NOTICE)."
  go list -deps -tags goolm -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/axon |
    sort -u | while read -r path ver dir; do
      for f in "$dir"/LICENSE* "$dir"/COPYING* "$dir"/NOTICE*; do
        [ -f "$f" ] || continue
        printf '\n==== %s %s: %s ====\n\n' "$path" "$ver" "$(basename "$f")"
        cat "$f"
      done
    done
  printf '\n==== Go %s (standard library and runtime): LICENSE ====\n\n' "$(go env GOVERSION)"
  cat "$(go env GOROOT)/LICENSE"
} >dist/THIRD_PARTY_LICENSES.txt
cp LICENSE NOTICE dist/
(cd dist && sha256sum axon-* >SHA256SUMS)
echo "release: dist/SHA256SUMS"
cat dist/SHA256SUMS
