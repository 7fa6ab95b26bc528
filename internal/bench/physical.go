package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// physicalPool names the namespace and node pool of the physical-limit
// objects; no bridge serves it.
const physicalPool = "bench-physical"

// physicalResult is what the API server alone does on this machine in this
// run: N Devices like the ones an import makes, created and then given
// their status, by a client with many requests in flight and no rate
// limit, while the benchmark watches them as it watches an import. It is
// the floor an import cannot beat.
type physicalResult struct {
	Devices              int     `json:"devices"`
	Workers              int     `json:"parallelRequests"`
	CreateSeconds        float64 `json:"createSeconds"`
	StatusSeconds        float64 `json:"statusSeconds"`
	TotalSeconds         float64 `json:"totalSeconds"`
	CreatesPerSecond     float64 `json:"createsPerSecond"`
	StatusWritesPerSec   float64 `json:"statusWritesPerSecond"`
	Failures             int64   `json:"failures"`
	APIServerCores       float64 `json:"apiserverCores"`
	EtcdCores            float64 `json:"etcdCores"`
	BenchmarkClientCores float64 `json:"benchmarkClientCores"`
	OtherCores           float64 `json:"otherProcessesCores"`
	// WriteLatency is one status write at a time, nothing else in flight:
	// the least any change that needs an API write can take here.
	WriteLatency latencyStats `json:"singleWriteLatency"`
}

// sequentialWrites is how many lone writes measure the write latency.
const sequentialWrites = 100

func measurePhysicalLimit(ctx context.Context, r *rig, n int) (physicalResult, error) {
	res := physicalResult{Devices: n, Workers: r.cfg.physicalWorkers}
	if err := r.createNamespace(ctx, physicalPool); err != nil {
		return res, err
	}
	objects := make([]*v1alpha1.Device, n)
	for i := range objects {
		objects[i] = physicalDevice(i)
	}
	// The benchmark watches the namespace as it watches an import's, so
	// that the API server carries the same observer in both: what the
	// import costs beyond this floor is then the bridge's own.
	watch, err := startDeviceWatch(ctx, r.restConfig, physicalPool, physicalPool)
	if err != nil {
		return res, fmt.Errorf("physical limit, watching: %w", err)
	}
	defer watch.stop()
	apiBefore, etcdBefore := r.controlPlane()
	selfBefore, _ := sampleProc(os.Getpid())
	var failures atomic.Int64

	start := time.Now()
	err = parallel(ctx, n, r.cfg.physicalWorkers, func(ctx context.Context, i int) error {
		return retry(ctx, &failures, func(ctx context.Context) error {
			err := r.client.Create(ctx, objects[i])
			if apierrors.IsAlreadyExists(err) {
				// An earlier attempt timed out on the client but was made.
				return r.client.Get(ctx, client.ObjectKeyFromObject(objects[i]), objects[i])
			}
			return err
		})
	})
	if err != nil {
		return res, fmt.Errorf("physical limit, creating: %w", err)
	}
	created := time.Now()
	err = parallel(ctx, n, r.cfg.physicalWorkers, func(ctx context.Context, i int) error {
		body, err := physicalStatusPatch(objects[i])
		if err != nil {
			return err
		}
		return retry(ctx, &failures, func(ctx context.Context) error {
			return r.client.Status().Patch(ctx, objects[i], client.RawPatch(types.MergePatchType, body))
		})
	})
	if err != nil {
		return res, fmt.Errorf("physical limit, writing status: %w", err)
	}
	end := time.Now()
	apiAfter, etcdAfter := r.controlPlane()
	selfAfter, _ := sampleProc(os.Getpid())

	res.CreateSeconds = created.Sub(start).Seconds()
	res.StatusSeconds = end.Sub(created).Seconds()
	res.TotalSeconds = end.Sub(start).Seconds()
	res.CreatesPerSecond = float64(n) / res.CreateSeconds
	res.StatusWritesPerSec = float64(n) / res.StatusSeconds
	res.Failures = failures.Load()
	res.APIServerCores, res.EtcdCores = cores(apiBefore, apiAfter), cores(etcdBefore, etcdAfter)
	res.BenchmarkClientCores = cores(selfBefore, selfAfter)
	res.OtherCores = r.load.othersCores(start, end)
	res.WriteLatency = singleWriteLatency(ctx, r, objects[:min(n, sequentialWrites)])
	return res, nil
}

// singleWriteLatency times status writes made one after another.
func singleWriteLatency(ctx context.Context, r *rig, objects []*v1alpha1.Device) latencyStats {
	var samples []time.Duration
	for i, d := range objects {
		body := fmt.Appendf(nil, `{"status":{"lastConnected":%d}}`, i+1)
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		err := r.client.Status().Patch(callCtx, d, client.RawPatch(types.MergePatchType, body))
		cancel()
		if err == nil {
			samples = append(samples, time.Since(start))
		}
	}
	st := summarize(samples, len(objects)-len(samples))
	st.SamplesMs = nil
	return st
}

// physicalDevice is an object of the size and shape an import creates: the
// same EdgeX device converted the same way, with the bridge's annotations
// and finalizer.
func physicalDevice(i int) *v1alpha1.Device {
	edge := fleetDevice(fleetDeviceName(i), i)
	edge.Id = uuid.NewString()
	spec := convert.DeviceFromEdgeX(edge)
	spec.NodePool = physicalPool
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: physicalPool,
			Name:      convert.PreferredKubeName(physicalPool, edge.Name),
			Labels:    map[string]string{v1alpha1.LegacyEdgeXNameLabel: edge.Name},
			Annotations: map[string]string{
				v1alpha1.EdgeXNameAnnotation: edge.Name,
				v1alpha1.OriginAnnotation:    v1alpha1.OriginEdge,
				physicalIDAnnotation:         edge.Id,
			},
			Finalizers: []string{v1alpha1.Finalizer},
		},
		Spec: spec,
	}
}

// physicalIDAnnotation carries the made-up EdgeX id to the status write.
const physicalIDAnnotation = "bench.edgebridge.io/edgex-id"

// physicalStatusPatch is the status an import writes: synced, the EdgeX id
// and states, the Synced condition.
func physicalStatusPatch(d *v1alpha1.Device) ([]byte, error) {
	status := v1alpha1.DeviceStatus{
		Synced: true, EdgeId: d.Annotations[physicalIDAnnotation],
		AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up, ObservedGeneration: d.Generation,
		Conditions: []v1alpha1.Condition{{
			Type: v1alpha1.ConditionSynced, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonInSync,
			LastTransitionTime: metav1.Now(), ObservedGeneration: d.Generation,
		}},
	}
	return json.Marshal(map[string]any{"status": status})
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first
// error.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// retry makes a request up to three times, counting failures: a loaded API
// server may time a request out, which the limit should survive and report.
func retry(ctx context.Context, failures *atomic.Int64, fn func(context.Context) error) error {
	var err error
	for range 3 {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = fn(callCtx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		failures.Add(1)
	}
	return err
}
