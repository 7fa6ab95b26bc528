//go:build !race

package main

// raceBuild is false when the test runs without the race detector.
const raceBuild = false
