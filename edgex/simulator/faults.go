package simulator

import (
	"context"
	"sync"
	"time"
)

// Faults injects what a real edge does to the bridge. The zero state is a
// healthy EdgeX; Clear returns to it.
type Faults struct {
	sim *Simulator

	mu            sync.Mutex
	delay         time.Duration
	deviceDelay   map[string]time.Duration
	failStatus    int
	failLeft      int
	listStatus    int
	listLeft      int
	errorBody     bool
	truncate      bool
	servicesDown  map[string]bool
	busWasDropped bool
	commandDown   bool
}

// SetLatency makes every REST call wait d before it is served (a call whose
// client gives up stops waiting).
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// SetDeviceLatency makes commands to device take d, over REST and MQTT (a
// slow device); 0 removes it.
func (f *Faults) SetDeviceLatency(device string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deviceDelay == nil {
		f.deviceDelay = map[string]time.Duration{}
	}
	if d <= 0 {
		delete(f.deviceDelay, device)
		return
	}
	f.deviceDelay[device] = d
}

// FailRequests makes the next n REST calls answer status with an EdgeX error
// body; n < 0 fails all of them until Clear, n == 0 stops failing.
func (f *Faults) FailRequests(status int, n int) {
	f.mu.Lock()
	f.failStatus, f.failLeft = status, n
	f.mu.Unlock()
}

// FailLists is FailRequests for list calls (GET .../all) only.
func (f *Faults) FailLists(status int, n int) {
	f.mu.Lock()
	f.listStatus, f.listLeft = status, n
	f.mu.Unlock()
}

// ErrorBodyOnSuccess makes list calls answer HTTP 200 with an EdgeX error
// body instead of the list.
func (f *Faults) ErrorBodyOnSuccess(on bool) {
	f.mu.Lock()
	f.errorBody = on
	f.mu.Unlock()
}

// TruncateResponses cuts every REST answer's body in the middle, leaving
// invalid JSON with a consistent Content-Length.
func (f *Faults) TruncateResponses(on bool) {
	f.mu.Lock()
	f.truncate = on
	f.mu.Unlock()
}

// SetServiceDown makes a device service stop answering: adding or updating
// its devices answers 503 with core-metadata's timeout page (the real one
// takes 5 s; this answers at once and creates nothing), commands to its
// devices fail as core-command reports an unreachable service, and its
// autoEvents stop.
func (f *Faults) SetServiceDown(service string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.servicesDown == nil {
		f.servicesDown = map[string]bool{}
	}
	if down {
		f.servicesDown[service] = true
	} else {
		delete(f.servicesDown, service)
	}
}

// SetCommandDown stops core-command (its port refuses connections and its
// external MQTT API answers nothing) or starts it again on the same port.
// core-metadata and the device services stay up.
func (f *Faults) SetCommandDown(down bool) error {
	f.mu.Lock()
	f.commandDown = down
	f.mu.Unlock()
	if down {
		f.sim.stopCommand()
		return nil
	}
	return f.sim.startCommand()
}

func (f *Faults) coreCommandDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commandDown
}

// DropBus disconnects the simulator from the broker: nothing is published
// and no external command is answered until RestoreBus. Without a bus it
// does nothing.
func (f *Faults) DropBus() {
	f.mu.Lock()
	f.busWasDropped = true
	f.mu.Unlock()
	f.sim.bus.drop()
}

// RestoreBus reconnects after DropBus and returns once the command topics
// are subscribed again (or after 30 s; the error is logged).
func (f *Faults) RestoreBus() {
	f.mu.Lock()
	f.busWasDropped = false
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.sim.lifetime, 30*time.Second)
	defer cancel()
	if err := f.sim.bus.restore(ctx); err != nil {
		f.sim.log.Error("restore message bus", "err", err)
	}
}

// Clear removes every fault, reconnecting the bus if it was dropped.
func (f *Faults) Clear() {
	f.mu.Lock()
	dropped, commandDown := f.busWasDropped, f.commandDown
	f.commandDown = false
	f.delay, f.deviceDelay = 0, nil
	f.failStatus, f.failLeft, f.listStatus, f.listLeft = 0, 0, 0, 0
	f.errorBody, f.truncate, f.servicesDown = false, false, nil
	f.mu.Unlock()
	if dropped {
		f.RestoreBus()
	}
	if commandDown {
		if err := f.sim.startCommand(); err != nil {
			f.sim.log.Error("restart core-command", "err", err)
		}
	}
}

func (f *Faults) latency() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delay
}

func (f *Faults) deviceLatency(device string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deviceDelay[device]
}

// takeFailure uses up one injected failure for a call, if one is due.
func (f *Faults) takeFailure(isList bool) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failLeft != 0 {
		if f.failLeft > 0 {
			f.failLeft--
		}
		return f.failStatus, true
	}
	if isList && f.listLeft != 0 {
		if f.listLeft > 0 {
			f.listLeft--
		}
		return f.listStatus, true
	}
	return 0, false
}

func (f *Faults) errorBodyOnSuccess() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errorBody
}

func (f *Faults) truncating() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.truncate
}

func (f *Faults) serviceDown(service string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.servicesDown[service]
}
