#!/usr/bin/env bash
# Fails when deepcopy code or CRDs (deploy/crds and the Helm chart's copy)
# differ from what `make generate` writes, so that a change to api/ cannot
# land without its generated files.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r api deploy "$tmp/"
make -s generate >/dev/null
chart=deploy/helm/edgebridge/crds
if ! diff -r "$tmp/api" api >/dev/null || ! diff -r "$tmp/deploy/crds" deploy/crds >/dev/null ||
	! diff -r "$tmp/$chart" "$chart" >/dev/null; then
	echo "generated files are stale; run 'make generate' and commit:" >&2
	diff -r "$tmp/api" api >&2 || true
	diff -r "$tmp/deploy/crds" deploy/crds >&2 || true
	diff -r "$tmp/$chart" "$chart" >&2 || true
	# put back what was there, so the check never edits the tree
	rm -rf api deploy/crds "$chart" && cp -r "$tmp/api" . && cp -r "$tmp/deploy/crds" deploy/ && cp -r "$tmp/$chart" "$chart"
	exit 1
fi
