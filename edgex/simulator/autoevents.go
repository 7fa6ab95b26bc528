package simulator

import (
	"context"
	"fmt"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
	"github.com/google/uuid"
)

// autoEvents runs devices' autoEvents as device-sdk-go does: each one reads
// its source on its interval and publishes the event (with onChange, only
// when a reading changed). Schedules follow device adds, updates and
// deletes.
type autoEvents struct {
	s       *Simulator
	enabled bool
	// schedules by device name; guarded by s.mu like the database they
	// mirror.
	schedules map[string]schedule
}

type schedule struct {
	spec   string
	cancel context.CancelFunc
}

func newAutoEvents(s *Simulator) *autoEvents {
	return &autoEvents{s: s, schedules: map[string]schedule{}}
}

func (a *autoEvents) enable() {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.enabled = true
	for name := range a.s.db.devices {
		a.refresh(name)
	}
}

// disable stops every schedule; Close waits for them.
func (a *autoEvents) disable() {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.enabled = false
	for name, sc := range a.schedules {
		sc.cancel()
		delete(a.schedules, name)
	}
}

// refresh restarts a device's schedule when its autoEvents changed, and
// stops it when the device is gone. Callers hold s.mu.
func (a *autoEvents) refresh(device string) {
	if !a.enabled {
		return
	}
	d, exists := a.s.db.devices[device]
	spec := fmt.Sprint(d.AutoEvents)
	old, running := a.schedules[device]
	if running && exists && old.spec == spec {
		return
	}
	if running {
		old.cancel()
		delete(a.schedules, device)
	}
	if !exists || len(d.AutoEvents) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(a.s.lifetime)
	a.schedules[device] = schedule{spec: spec, cancel: cancel}
	for _, ae := range d.AutoEvents {
		interval, err := time.ParseDuration(ae.Interval)
		if err != nil {
			continue
		}
		a.s.wg.Add(1)
		go a.run(ctx, device, ae, max(interval, time.Millisecond))
	}
}

func (a *autoEvents) run(ctx context.Context, device string, ae models.AutoEvent, interval time.Duration) {
	defer a.s.wg.Done()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last map[string]string
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		ev, service, ok := a.read(device, ae.SourceName)
		if !ok {
			continue
		}
		current := readingValues(ev)
		if ae.OnChange && sameValues(last, current) {
			continue
		}
		last = current
		a.s.sendEvent(service, ev, uuid.NewString())
	}
}

// read is a scheduled read: sensors drift first, and nothing is read from a
// device service that is down or a device that refuses commands.
func (a *autoEvents) read(device, source string) (dtos.Event, string, bool) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	t, ok := a.s.serviceView(device)
	if !ok || a.s.faults.serviceDown(t.service.Name) {
		return dtos.Event{}, "", false
	}
	ev, err := a.s.read(t, source, readOptions{regex: true, drift: true})
	if err != nil {
		return dtos.Event{}, "", false
	}
	return ev, t.service.Name, true
}

func readingValues(ev dtos.Event) map[string]string {
	out := make(map[string]string, len(ev.Readings))
	for _, r := range ev.Readings {
		if r.BinaryValue != nil {
			out[r.ResourceName] = string(r.BinaryValue)
		} else {
			out[r.ResourceName] = r.Value
		}
	}
	return out
}

func sameValues(a, b map[string]string) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
