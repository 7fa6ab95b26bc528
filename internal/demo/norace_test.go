//go:build !race

package demo

// raceBuild is false when the test runs without the race detector.
const raceBuild = false
