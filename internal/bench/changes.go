package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// latencyPhase is one latency measurement: changes made at a steady rate
// and how long each took to show on the other side.
type latencyPhase struct {
	RatePerSecond float64 `json:"ratePerSecond"`
	WindowSeconds float64 `json:"windowSeconds"`
	Changes       int     `json:"changes"`
	// FailedCalls are changes the benchmark could not make (the API server
	// or simulator refused); they are not in the statistics.
	FailedCalls int                     `json:"failedCalls"`
	MaxLateMs   float64                 `json:"generatorMaxLateMs"`
	All         latencyStats            `json:"all"`
	BySeries    map[string]latencyStats `json:"bySeries"`
	OtherCores  float64                 `json:"otherProcessesCores"`
	// SeenByWatch (cloud to edge only) is the time from each change's API
	// call to the benchmark's own watch showing it: the API write and the
	// watch delivery, which the bridge's watch waits for just the same.
	SeenByWatch *latencyStats `json:"seenByWatch,omitempty"`
	Split       *timeSplit    `json:"timeSplit,omitempty"`
}

func phaseResult(p *probe, rate float64, pr paceResult, failed int64, others float64, series ...string) latencyPhase {
	out := latencyPhase{
		RatePerSecond: rate, WindowSeconds: pr.Elapsed.Seconds(), Changes: pr.Started, FailedCalls: int(failed), OtherCores: others,
		MaxLateMs: float64(pr.MaxLate.Microseconds()) / 1000, All: p.stats(""), BySeries: map[string]latencyStats{},
	}
	for _, s := range series {
		st := p.stats(s)
		st.SamplesMs = nil // the chart draws "all"
		out.BySeries[s] = st
	}
	return out
}

// settleTimeout bounds the wait for the effects of a phase's last changes.
const settleTimeout = 30 * time.Second

// fifo is a small concurrency-safe queue of names.
type fifo struct {
	mu    sync.Mutex
	items []string
}

func (q *fifo) push(s string) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
}

func (q *fifo) pop() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return "", false
	}
	s := q.items[0]
	q.items = q.items[1:]
	return s, true
}

func (q *fifo) snapshot() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.items...)
}

// measureEdgeToCloud adds, updates and deletes devices at the edge, as
// device services and the EdgeX UI do, and times until the cluster shows
// each change: an added device exists with complete status, an updated one
// mirrors the new description, a deleted one is gone.
func (p *pool) measureEdgeToCloud(ctx context.Context) latencyPhase {
	cfg := p.rig.cfg
	pr := newProbe()
	var added fifo
	cancel := p.watch.observe(func(ch deviceChange) {
		name := v1alpha1.EdgeXName(ch.dev)
		if ch.kind == deviceDeleted {
			pr.effect("delete/"+name, ch.at)
			return
		}
		if importComplete(ch.dev) && pr.effect("add/"+name, ch.at) {
			added.push(name)
		}
		pr.effect("update/"+name+"/"+ch.dev.Spec.Description, ch.at)
	})
	defer cancel()

	var failed, updates atomic.Int64
	split := p.startSplit(ctx, "edge-to-cloud", cfg.latencyWindow)
	total := int(cfg.opRate * cfg.latencyWindow.Seconds())
	run := pace(ctx, total, cfg.opRate, 4, func(_ context.Context, i int) {
		var key string
		var err error
		switch i % 3 {
		case 0:
			name := fmt.Sprintf("e2c-%05d", i)
			key = "add/" + name
			pr.cause(key, "add")
			_, err = p.sim.AddDevice(fleetDevice(name, i))
		case 2:
			if name, ok := added.pop(); ok {
				key = "delete/" + name
				pr.cause(key, "delete")
				err = p.sim.DeleteDevice(name)
				break
			}
			fallthrough // nothing added has arrived yet: update instead
		default:
			// Each update goes to a device no other update of the phase
			// touches: two quick edits of one device reach the cluster as
			// one, and the first would count as lost.
			name := p.fleet[int(updates.Add(1)-1)%len(p.fleet)]
			desc := fmt.Sprintf("edge update %d", i)
			key = "update/" + name + "/" + desc
			pr.cause(key, "update")
			err = p.sim.UpdateDevice(dtos.UpdateDevice{Name: &name, Description: &desc})
		}
		if err != nil {
			pr.forget(key)
			failed.Add(1)
		}
	})
	if err := pr.settle(ctx, settleTimeout); err != nil {
		logf("  edge->cloud: %d changes never showed: %v", pr.outstanding(), err)
	}
	others := p.rig.load.othersCores(time.Now().Add(-run.Elapsed), time.Now())
	res := phaseResult(pr, cfg.opRate, run, failed.Load(), others, "add", "update", "delete")
	res.Split = split.finish(ctx)
	return res
}

// managedDevice is a Device created in the cloud, for commands.
type managedDevice struct {
	name, profile string
}

// measureCloudToEdge creates and updates managed Devices at a steady rate
// and times until EdgeX announces each change (core-metadata's system
// event). The created devices are returned for the command phases.
func (p *pool) measureCloudToEdge(ctx context.Context) (latencyPhase, []managedDevice, error) {
	cfg := p.rig.cfg
	pr := newProbe()
	var created fifo
	profiles := map[string]string{}
	var profilesMu sync.Mutex
	bus, err := p.systemEvents(ctx, func(d dtos.Device, action string, at time.Time) {
		switch action {
		case messagebus.ActionAdd:
			if pr.effect("create/"+d.Name, at) {
				created.push(d.Name)
			}
		case messagebus.ActionUpdate:
			pr.effect("update/"+d.Name+"/"+d.Description, at)
		}
	})
	if err != nil {
		return latencyPhase{}, nil, err
	}
	defer bus.Close()
	seen := newProbe()
	cancelWatch := p.watch.observe(func(ch deviceChange) {
		switch ch.kind {
		case deviceAdded:
			seen.effect("create/"+ch.dev.Name, ch.at)
		case deviceUpdated:
			seen.effect("update/"+ch.dev.Name+"/"+ch.dev.Spec.Description, ch.at)
		}
	})
	defer cancelWatch()

	var failed atomic.Int64
	split := p.startSplit(ctx, "cloud-to-edge", cfg.latencyWindow)
	lastUpdate := &lastKeys{keys: map[string]string{}}
	total := int(cfg.opRate * cfg.latencyWindow.Seconds())
	run := pace(ctx, total, cfg.opRate, 8, func(ctx context.Context, i int) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if i%2 == 1 {
			// An update waits until the device's previous one reached
			// EdgeX: two quick edits reach EdgeX as one, and the first
			// would count as lost.
			if name, ok := created.pop(); ok {
				created.push(name)
				if desc := fmt.Sprintf("cloud update %d", i); lastUpdate.claim(pr, name, "update/"+name+"/"+desc) {
					seen.cause("update/"+name+"/"+desc, "update")
					if err := p.updateDescription(ctx, pr, name, desc); err != nil {
						seen.forget("update/" + name + "/" + desc)
						failed.Add(1)
					}
					return
				}
			}
		}
		d := p.managedDevice(fmt.Sprintf("c2e-%05d", i), i)
		profilesMu.Lock()
		profiles[d.Name] = d.Spec.Profile
		profilesMu.Unlock()
		key := "create/" + d.Name
		pr.cause(key, "create")
		seen.cause(key, "create")
		if err := p.rig.client.Create(ctx, d); err != nil {
			pr.forget(key)
			seen.forget(key)
			failed.Add(1)
		}
	})
	if err := pr.settle(ctx, settleTimeout); err != nil {
		logf("  cloud->edge: %d changes never reached EdgeX: %v", pr.outstanding(), err)
	}
	var targets []managedDevice
	for _, name := range created.snapshot() {
		targets = append(targets, managedDevice{name: name, profile: profiles[name]})
	}
	others := p.rig.load.othersCores(time.Now().Add(-run.Elapsed), time.Now())
	res := phaseResult(pr, cfg.opRate, run, failed.Load(), others, "create", "update")
	res.Split = split.finish(ctx)
	seenStats := seen.stats("")
	seenStats.SamplesMs = nil
	res.SeenByWatch = &seenStats
	return res, targets, nil
}

// lastKeys remembers each device's last change, so that a device gets a
// new one only once the last had its effect.
type lastKeys struct {
	mu   sync.Mutex
	keys map[string]string
}

// claim registers key as the device's next change, in the update series,
// unless its last one is still pending.
func (l *lastKeys) claim(pr *probe, device, key string) bool {
	return l.claimAs(pr, device, key, "update")
}

// updateDescription patches a managed Device's description; the change was
// registered with the probe by lastKeys.claim.
func (p *pool) updateDescription(ctx context.Context, pr *probe, name, desc string) error {
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"description": desc}})
	if err != nil {
		return err
	}
	key := "update/" + name + "/" + desc
	d := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name}}
	if err := p.rig.client.Patch(ctx, d, client.RawPatch(types.MergePatchType, body)); err != nil {
		pr.forget(key)
		return err
	}
	return nil
}

// managedDevice is a Device applied in the cloud: the truth, which the
// bridge creates in EdgeX.
func (p *pool) managedDevice(name string, i int) *v1alpha1.Device {
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name},
		Spec: v1alpha1.DeviceSpec{
			Description: "applied in the cloud", AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up,
			Protocols: map[string]v1alpha1.ProtocolProperties{"other": {"Address": name}},
			Labels:    []string{"bench", "cloud"}, Service: serviceName(i),
			Profile: fleetProfileSpecs[i%len(fleetProfileSpecs)].name, Managed: true, NodePool: p.name,
		},
	}
}

// systemEvents subscribes to the pool's core-metadata device events, as
// the bridge does, and hands each to fn with its arrival time.
func (p *pool) systemEvents(ctx context.Context, fn func(d dtos.Device, action string, at time.Time)) (*messagebus.Client, error) {
	bus, err := messagebus.New(messagebus.Options{BrokerURL: p.rig.broker.URL(), TopicPrefix: p.prefix, HandlerQueue: 1 << 16})
	if err != nil {
		return nil, err
	}
	if err := bus.Start(context.Background()); err != nil {
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.WaitConnected(waitCtx); err != nil {
		bus.Close()
		return nil, err
	}
	err = bus.SubscribeSystemEvents(func(_ string, se messagebus.SystemEvent) {
		at := time.Now()
		if se.Type != messagebus.KindDevice {
			return
		}
		if d, err := se.Device(); err == nil {
			fn(d, se.Action, at)
		}
	}, func(topic string, err error) { logf("  undecodable system event on %s: %v", topic, err) })
	if err != nil {
		bus.Close()
		return nil, fmt.Errorf("subscribe to system events: %w", err)
	}
	return bus, nil
}
