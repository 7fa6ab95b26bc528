//go:build race

package devicecontroller_test

// raceEnabled says the tests run with the race detector.
const raceEnabled = true
