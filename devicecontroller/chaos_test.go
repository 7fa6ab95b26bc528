//go:build chaos

package devicecontroller_test

import (
	"testing"
	"time"
)

// The long versions of the reliability tests, for `make chaos` (the tag
// keeps them out of `make test`): the same assertions at sizes and
// durations closer to a real pool.

// The real binary is killed five times while it imports 5,000 edge devices
// and drives 100 managed ones, with users editing and deleting meanwhile;
// restarted, it converges (see TestBinaryKilledMidImportConverges).
func TestChaosBinaryKilledDuring5000DeviceImport(t *testing.T) {
	killedDuringImport(t, 5000, 100, 5)
}

// EdgeX is unreachable for a full minute while users edit 100 devices:
// nothing is deleted meanwhile and every edit lands afterwards (see
// TestEdgeXOutageWhileUsersEdit).
func TestChaosEdgeXOutageOfAMinute(t *testing.T) {
	edgeXOutageWhileUsersEdit(t, 100, time.Minute)
}

// The cloud link of a pool of two replicas and 1,000 devices, reporting
// every 10 seconds, drops for ten minutes (see TestBridgeRidesOutACloudOutage).
func TestChaosCloudOutageOfTenMinutes(t *testing.T) {
	cloudOutageAtScale(t, 1000, 20, 10*time.Second, 10*time.Minute)
}
