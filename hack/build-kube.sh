#!/usr/bin/env bash
# Builds a Kubernetes binary (kube-apiserver, kubectl) from a pinned
# k8s.io/kubernetes module, through the Go module proxy, into bin/.
#
#   hack/build-kube.sh NAME          from hack/tools/kube, into bin/NAME
#   hack/build-kube.sh NAME compat   from hack/tools/kube-compat (the oldest
#                                    supported Kubernetes), into bin/NAME-1.MINOR
#
# The first kube-apiserver build takes about five minutes on two cores, so it
# prints progress; later runs reuse bin/. With `compat` it prints the path of
# the binary on its last line, so that callers need not know the version.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
flavour=${2:-}
case $flavour in
"") module=hack/tools/kube ;;
compat) module=hack/tools/kube-compat ;;
*) echo "build-kube.sh: unknown flavour $flavour (want nothing or compat)" >&2; exit 2 ;;
esac
version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3; exit} $1=="k8s.io/kubernetes" {print $2; exit}' "$module/go.mod")
minor=${version#v1.}; minor=${minor%%.*}
out=bin/$name
if [ -n "$flavour" ]; then out=bin/$name-1.$minor; fi
stamp=bin/.${out#bin/}.version
report() { if [ -n "$flavour" ]; then echo "$PWD/$out"; fi; }
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
	report
	exit 0
fi
mkdir -p bin
echo ">> building $out $version from k8s.io/kubernetes (first time only, a few minutes)" >&2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
# Kubernetes before 1.29 reaches into the runtime with go:linkname, which
# today's linker refuses unless told not to check.
if [ "$minor" -lt 29 ]; then ldflags="$ldflags -checklinkname=0"; fi
start=$(date +%s)
root=$PWD
( cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$root/$out.tmp" "k8s.io/kubernetes/cmd/$name" ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 15 & wait $! || true
	kill -0 "$pid" 2>/dev/null && echo "   ... still building $out ($(( $(date +%s) - start ))s)" >&2
done
wait "$pid"
mv "$out.tmp" "$out"
echo "$version" > "$stamp"
echo ">> built $out in $(( $(date +%s) - start ))s" >&2
report
