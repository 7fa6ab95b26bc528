package bench

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/simulator"
)

// commandPhase is the latency from patching a desired value to the
// simulated device accepting the write, over one transport.
type commandPhase struct {
	Transport     string       `json:"transport"`
	RatePerSecond float64      `json:"ratePerSecond"`
	WindowSeconds float64      `json:"windowSeconds"`
	Commands      int          `json:"commands"`
	FailedCalls   int          `json:"failedCalls"`
	MaxLateMs     float64      `json:"generatorMaxLateMs"`
	Targets       int          `json:"targetDevices"`
	Latency       latencyStats `json:"latency"`
	// BridgeCommandP50Ms is the bridge's own view (edgebridge_command_
	// duration_seconds): from sending the command to its answer, without
	// the watch and reconcile before it. Approximate: histogram buckets.
	BridgeCommandMeanMs float64 `json:"bridgeCommandMeanMs"`
	OtherCores          float64 `json:"otherProcessesCores"`
	// SeenByWatch is the time from each patch to the benchmark's own
	// watch showing it (see latencyPhase).
	SeenByWatch *latencyStats `json:"seenByWatch,omitempty"`
	Split       *timeSplit    `json:"timeSplit,omitempty"`
	// slowSent is when each command slower than slowCommand was patched:
	// pools measured side by side merge them to tell one stall from a load
	// spread over the window.
	slowSent []time.Time
}

// slowCommand is the latency past which a command counts as slow: the
// target's p99.
const slowCommand = 200 * time.Millisecond

var errNoTargets = errors.New("no managed devices to command (the cloud-to-edge phase created none)")

// measureCommands patches desired values of managed devices at the
// configured rate and times until the simulated device receives each
// write, through whatever transport the running bridge was started with.
func (p *pool) measureCommands(ctx context.Context, transport string, targets []managedDevice) (commandPhase, error) {
	res, err := p.commandsAt(ctx, transport, targets, p.rig.cfg.commandRate, 0, true)
	if res.SeenByWatch != nil {
		res.SeenByWatch.SamplesMs = nil
	}
	return res, err
}

// commandsAt is measureCommands at a given rate, its schedule starting
// offset from now. With split it also reads
// where the time went from the bridge's and the API server's histograms;
// pools measured side by side leave that out, as twenty readings of the
// API server's metrics at once would load the server they measure.
func (p *pool) commandsAt(ctx context.Context, transport string, targets []managedDevice, rate float64, offset time.Duration, split bool) (commandPhase, error) {
	cfg := p.rig.cfg
	res := commandPhase{Transport: transport, RatePerSecond: rate, Targets: len(targets)}
	if len(targets) == 0 {
		return res, errNoTargets
	}
	pr := newProbe()
	pr.slowAfter = slowCommand
	cancel := p.sim.OnWrite(func(w simulator.Write) { pr.effect(commandKey(w.Device, w.Resource), w.At) })
	defer cancel()
	seen := newProbe()
	cancelWatch := p.watch.observe(func(ch deviceChange) {
		if ch.kind != deviceUpdated {
			return
		}
		for res, prop := range ch.dev.Spec.DeviceProperties {
			seen.effect(desiredKey(ch.dev.Name, res, prop.DesiredValue), ch.at)
		}
	})
	defer cancelWatch()
	var splitProbe *splitProbe
	if split {
		splitProbe = p.startSplit(ctx, "commands-"+transport, cfg.commandWindow)
	}
	before, err := p.bridge.metrics(ctx)
	if err != nil {
		return res, err
	}
	var failed atomic.Int64
	claims := &lastKeys{keys: map[string]string{}}
	total := int(rate * cfg.commandWindow.Seconds())
	run := paceAfter(ctx, offset, total, rate, 8, func(ctx context.Context, i int) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// One command in flight per device: the next free target.
		for k := range targets {
			t := targets[(i+k)%len(targets)]
			spec, _ := profileSpecNamed(t.profile)
			key := commandKey(t.name, spec.writable)
			if !claims.claimAs(pr, t.name, key, transport) {
				continue
			}
			value := p.nextDesired(t.name, spec)
			seen.cause(desiredKey(t.name, spec.writable, value), transport)
			if err := p.setDesired(ctx, t.name, spec.writable, value); err != nil {
				pr.forget(key)
				seen.forget(desiredKey(t.name, spec.writable, value))
				failed.Add(1)
			}
			return
		}
	})
	if err := pr.settle(ctx, settleTimeout); err != nil {
		logf("  commands (%s): %d never reached the device: %v", transport, pr.outstanding(), err)
	}
	if splitProbe != nil {
		res.Split = splitProbe.finish(ctx)
	}
	// The samples stay for pools measured side by side to merge.
	seenStats := seen.stats("")
	res.SeenByWatch = &seenStats
	after, err := p.bridge.metrics(ctx)
	if err != nil {
		return res, err
	}
	res.WindowSeconds, res.Commands, res.FailedCalls = run.Elapsed.Seconds(), run.Started, int(failed.Load())
	res.MaxLateMs = float64(run.MaxLate.Microseconds()) / 1000
	res.Latency = pr.stats(transport)
	res.slowSent = pr.slowCauses()
	res.OtherCores = p.rig.load.othersCores(time.Now().Add(-run.Elapsed), time.Now())
	match := map[string]string{"transport": transport}
	if n := after.sum("edgebridge_command_duration_seconds_count", match) - before.sum("edgebridge_command_duration_seconds_count", match); n > 0 {
		sum := after.sum("edgebridge_command_duration_seconds_sum", match) - before.sum("edgebridge_command_duration_seconds_sum", match)
		res.BridgeCommandMeanMs = sum / n * 1000
	}
	return res, nil
}

func commandKey(device, resource string) string { return "cmd/" + device + "/" + resource }

// claimAs is claim for a named series.
func (l *lastKeys) claimAs(pr *probe, device, key, series string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.keys[device]; ok && pr.isPending(last) {
		return false
	}
	l.keys[device] = key
	pr.cause(key, series)
	return true
}

func desiredKey(device, resource, value string) string {
	return "desired/" + device + "/" + resource + "/" + value
}

// nextDesired is a value for the profile's writable resource that differs
// from what the device holds.
func (p *pool) nextDesired(device string, spec profileSpec) string {
	current, _ := p.sim.Value(device, spec.writable)
	valueType := ""
	for _, r := range spec.resources {
		if r.name == spec.writable {
			valueType = r.valueType
		}
	}
	return nextCommandValue(valueType, current)
}

// setDesired is `kubectl patch device`: a desired value for one resource.
func (p *pool) setDesired(ctx context.Context, device, resource, value string) error {
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"deviceProperties": map[string]any{
		resource: map[string]string{"name": resource, "desiredValue": value},
	}}})
	if err != nil {
		return err
	}
	d := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: device}}
	return p.rig.client.Patch(ctx, d, client.RawPatch(types.MergePatchType, body))
}
