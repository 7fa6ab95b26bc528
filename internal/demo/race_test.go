//go:build race

package demo

// raceBuild is true when the test runs under the race detector: the demo's
// binaries are then built with it too, from the packages `go test -race`
// has already compiled.
const raceBuild = true
