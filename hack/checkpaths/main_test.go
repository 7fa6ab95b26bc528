package main

import (
	"strings"
	"testing"
)

func TestCheckFindsPathsOutsideTheRepository(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
		want    int
	}{
		{"the old captures folder", "hack/testenv/captures/captures.go",
			`return filepath.Join(root, "..", "shared", "edgex-v3")`, 1},
		{"captures named in prose", "README.md", "captured from a real stack (`../shared/edgex-v3`)", 1},
		{"Go joins out of the root", "hack/testenv/captures/captures.go",
			`filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "data")`, 1},
		{"Go joins up to the root", "hack/testenv/captures/captures.go",
			`filepath.Join(filepath.Dir(file), "..", "..", "..")`, 0},
		{"script climbs out", "hack/build.sh", `cp x ../../elsewhere/`, 1},
		{"script climbs to the root", "hack/build.sh", `cd "$(dirname "$0")/.."`, 0},
		{"kustomize reaches a sibling folder", "deploy/overlays/yurtappset/kustomization.yaml", "- ../../crds", 0},
		{"kustomize reaches past the root", "deploy/overlays/yurtappset/kustomization.yaml", "- ../../../../other/crds", 1},
		{"markdown link from the root", "README.md", "[x](../edgebridge-docs/x.md)", 1},
		{"markdown link inside", "docs/bench/results.md", "[x](../../README.md)", 0},
		{"windows separators", "hack/x.ps1", `..\..\other`, 1},
		{"marked as data", "devicecontroller/hostile_test.go",
			`name: "../../api/v3/ping"} // ` + notAPath + ` (a hostile name)`, 0},
		{"a marker does not excuse the reference folder", "x_test.go", `"../shared" // ` + notAPath, 1},
		{"dots inside a word are no path", "edgex/convert/names.go", `strings.ReplaceAll(s, "a../b", "")`, 0},
		{"a version range is no path", "go.mod", `// v1.2...v1.3/`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.file, []byte(tc.content))
			if len(got) != tc.want {
				t.Errorf("check(%s, %q) = %v, want %d violations", tc.file, tc.content, got, tc.want)
			}
			for _, v := range got {
				if !strings.HasPrefix(v.String(), tc.file+":1: ") {
					t.Errorf("violation %q does not name the file and line", v)
				}
			}
		})
	}
}
