#!/usr/bin/env bash
# Builds a Kubernetes binary (kube-apiserver, kubectl) from the k8s.io/kubernetes
# module pinned in hack/tools/kube, through the Go module proxy, into bin/.
# The first kube-apiserver build takes about five minutes on two cores, so it
# prints progress; later runs reuse bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
out=bin/$name
version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3; exit} $1=="k8s.io/kubernetes" {print $2; exit}' hack/tools/kube/go.mod)
stamp=bin/.$name.version
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
	exit 0
fi
mkdir -p bin
echo ">> building $name $version from k8s.io/kubernetes (first time only, a few minutes)"
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
start=$(date +%s)
root=$PWD
( cd hack/tools/kube && go build -trimpath -ldflags "$ldflags" -o "$root/$out.tmp" "k8s.io/kubernetes/cmd/$name" ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 15 & wait $! || true
	kill -0 "$pid" 2>/dev/null && echo "   ... still building $name ($(( $(date +%s) - start ))s)"
done
wait "$pid"
mv "$out.tmp" "$out"
echo "$version" > "$stamp"
echo ">> built $out in $(( $(date +%s) - start ))s"
