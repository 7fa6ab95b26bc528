package devicecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The API server keeps in every object a record of which client last set
// each of its fields (metadata.managedFields). Server-side apply needs it,
// to find conflicts and to remove the fields an applier stops applying;
// nothing else does. It is half of a Device's stored size, and decoded into
// nested maps it is more than half of what the API server holds in memory
// for each Device version: in make bench's twenty pools, 240 MB of the API
// server's 740 MB live heap, most of it in its watch cache, which keeps
// every version of the last minutes. Every status write also recomputed
// it. The length of the API server's garbage collections, which set the
// tail of a person's patch there, follows that heap.
//
// So the bridge empties the record of the objects it serves, once each, by
// the reset the API documents (writing managedFields: [{}]), unless a
// server-side applier owns fields of the object: that owner relies on the
// record, and the bridge leaves it alone. The API server starts no new
// record for an object without one until someone applies it server-side;
// from then on the object has an applier, and keeps its record.
//
// These writes are background work. They wait until the bridge has had no
// reconcile for ManagedFieldsQuiet (an import, or a person's edits, come
// first), and they share the telemetry status writes' pace, which yields
// to a slow API server (statusPacer).

// managedFieldsMark stands in the cache for a record the bridge may empty:
// the cache keeps no managedFields, only this one entry on the objects
// whose record has entries and no server-side applier.
var managedFieldsMark = []metav1.ManagedFieldsEntry{{Manager: "edgebridge.io/prunable"}}

// markPrunable is what the cache keeps of an object's managedFields.
func markPrunable(entries []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if e.Operation == metav1.ManagedFieldsOperationApply {
			return nil
		}
	}
	return managedFieldsMark
}

// prunable reports whether a cached object's managedFields may be emptied.
func prunable(obj client.Object) bool {
	mf := obj.GetManagedFields()
	return len(mf) == 1 && mf[0].Manager == managedFieldsMark[0].Manager
}

// prunableKey names one object of one kind.
type prunableKey struct {
	kind string
	types.NamespacedName
}

// fieldsPruner empties the managedFields of the pool's objects, one at a
// time, in the background.
type fieldsPruner struct {
	*shared
	pacer *statusPacer
	// newObject makes an empty object of a kind, by the kind's name.
	newObject map[string]func() client.Object
	// lastBusy is when a reconcile last started (Unix ns).
	lastBusy atomic.Int64

	mu sync.Mutex
	// queue is replaced by a new one each time it drains: a work queue
	// keeps the room its busiest moment needed (its backing array, its
	// sets, its metrics' maps), 3 MB after an import of 10,000 objects,
	// and the pruner has nothing to do for most of its life.
	queue   workqueue.TypedRateLimitingInterface[prunableKey]
	stopped bool
	// waiting holds the objects enqueued and not yet pruned or found
	// not to need it, for the gauge of those left.
	waiting map[prunableKey]struct{}
	left    prometheus.Gauge
	pruned  prometheus.Counter
}

func newFieldsPruner(s *shared, pacer *statusPacer) *fieldsPruner {
	p := &fieldsPruner{
		shared:    s,
		pacer:     pacer,
		newObject: map[string]func() client.Object{},
		waiting:   map[prunableKey]struct{}{},
		left:      s.metrics.managedFieldsLeft.WithLabelValues(s.metrics.pool),
		pruned:    s.metrics.managedFieldsPruned.WithLabelValues(s.metrics.pool),
	}
	p.queue = p.newQueue()
	return p
}

func (p *fieldsPruner) newQueue() workqueue.TypedRateLimitingInterface[prunableKey] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[prunableKey](time.Second, 5*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[prunableKey]{Name: "managedfields-" + p.opts.NodePool})
}

// serve has the pruner take the objects r reconciles.
func serve[O client.Object, E any](p *fieldsPruner, r *reconciler[O, E]) {
	r.pruner = p
	p.newObject[r.kind.name()] = func() client.Object { return r.kind.newObject() }
}

// busy records that a reconcile started: pruning waits for quiet.
func (p *fieldsPruner) busy() {
	if p != nil {
		p.lastBusy.Store(time.Now().UnixNano())
	}
}

// enqueue hands the pruner a cached object whose record may be emptied.
func (p *fieldsPruner) enqueue(kind string, obj client.Object) {
	if p == nil || !prunable(obj) {
		return
	}
	key := prunableKey{kind: kind, NamespacedName: client.ObjectKeyFromObject(obj)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.waiting[key]; !ok {
		p.waiting[key] = struct{}{}
		p.left.Set(float64(len(p.waiting)))
	}
	p.queue.Add(key)
}

func (p *fieldsPruner) settle(key prunableKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.waiting, key)
	p.left.Set(float64(len(p.waiting)))
}

// renewIfDrained replaces a drained queue, and the waiting set, with new
// ones, so that the room they took goes back.
func (p *fieldsPruner) renewIfDrained(q workqueue.TypedRateLimitingInterface[prunableKey]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || q != p.queue || len(p.waiting) > 0 || q.Len() > 0 {
		return
	}
	p.waiting = map[prunableKey]struct{}{}
	p.queue = p.newQueue()
	q.ShutDown()
}

// Start prunes until ctx ends; it runs while this replica leads the pool.
func (p *fieldsPruner) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stopped = true
		p.queue.ShutDown()
	}()
	for {
		p.mu.Lock()
		q, stopped := p.queue, p.stopped
		p.mu.Unlock()
		if stopped {
			return nil
		}
		key, shutdown := q.Get()
		if shutdown {
			continue // stopped, or replaced by renewIfDrained
		}
		p.handle(ctx, q, key)
		q.Done(key)
		p.renewIfDrained(q)
	}
}

func (p *fieldsPruner) handle(ctx context.Context, q workqueue.TypedRateLimitingInterface[prunableKey], key prunableKey) {
	if err := p.awaitQuiet(ctx); err != nil {
		return
	}
	retryAfter, err := p.prune(ctx, key)
	switch {
	case err != nil:
		p.log.V(1).Info("emptying managedFields failed; retrying", "kind", key.kind, "object", key.String(), "error", err.Error())
		q.AddRateLimited(key)
	case retryAfter > 0:
		q.AddAfter(key, retryAfter)
	default:
		q.Forget(key)
		p.settle(key)
	}
}

// awaitQuiet returns once no reconcile has started for ManagedFieldsQuiet.
func (p *fieldsPruner) awaitQuiet(ctx context.Context) error {
	for {
		wait := time.Until(time.Unix(0, p.lastBusy.Load()).Add(p.opts.ManagedFieldsQuiet))
		if wait <= 0 {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// prune empties one object's record, unless it has gone, has none left,
// or has gained a server-side applier. It reports how soon to look again
// when the object should be tried later.
func (p *fieldsPruner) prune(ctx context.Context, key prunableKey) (time.Duration, error) {
	newObject, ok := p.newObject[key.kind]
	if !ok {
		return 0, nil
	}
	obj := newObject()
	if err := p.client.Get(ctx, key.NamespacedName, obj); err != nil {
		return 0, client.IgnoreNotFound(err)
	}
	if !prunable(obj) || !obj.GetDeletionTimestamp().IsZero() {
		return 0, nil
	}
	if down, _, _ := p.cloud.Down(); down {
		return retryEdgeXDown, nil
	}
	if err := p.pacer.wait(ctx); err != nil {
		return 0, err
	}
	rv, err := json.Marshal(obj.GetResourceVersion())
	if err != nil {
		return 0, err
	}
	// The resourceVersion makes the reset apply to the version the cache
	// showed without an applier, never to one an applier wrote since.
	body := []byte(`{"metadata":{"managedFields":[{}],"resourceVersion":` + string(rv) + `}}`)
	ctx, cancel := context.WithTimeout(ctx, managedFieldsWriteTimeout)
	defer cancel()
	start := time.Now()
	err = p.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	switch {
	case err == nil:
		p.pacer.observe(time.Now(), time.Since(start))
		p.pruned.Inc()
		return 0, nil
	case apierrors.IsConflict(err):
		// A newer version: the cache shows it shortly, applier or not.
		return cacheCatchUp, nil
	case apierrors.IsNotFound(err):
		return 0, nil
	}
	return 0, fmt.Errorf("empty managedFields of %s %s: %w", key.kind, key, err)
}

// managedFieldsWriteTimeout bounds one reset.
const managedFieldsWriteTimeout = 30 * time.Second
