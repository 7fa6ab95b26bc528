#!/usr/bin/env bash
# Builds OpenYurt's yurthub (the node-side proxy and cache) from the release
# pinned in hack/openyurt.version, fetched through the Go module proxy, into
# bin/yurthub. Only `make chaos` needs it. The module cache is read-only, so
# the source is copied to a temporary directory first; the first build takes
# many minutes on two cores, so it prints progress; later runs reuse bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bin/yurthub
mod=$(awk '!/^#/ && NF==2 {print $1 "@" $2; exit}' hack/openyurt.version)
version=${mod#*@}
stamp=bin/.yurthub.version
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
	exit 0
fi
mkdir -p bin
dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$mod" | awk -F'"' '$2=="Dir" {print $4; exit}')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "build-yurthub: go mod download $mod gave no source directory" >&2
	exit 1
fi
src=$(mktemp -d)
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -R "$dir/." "$src/"
chmod -R u+w "$src"
echo ">> building yurthub $version from $mod (first time only, many minutes)"
start=$(date +%s)
root=$PWD
( cd "$src" && go mod download && go build -trimpath -ldflags "-s -w" -o "$root/$out.tmp" ./cmd/yurthub ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 15 & wait $! || true
	kill -0 "$pid" 2>/dev/null && echo "   ... still building yurthub ($(( $(date +%s) - start ))s)"
done
wait "$pid"
mv "$out.tmp" "$out"
echo "$version" > "$stamp"
echo ">> built $out in $(( $(date +%s) - start ))s"
