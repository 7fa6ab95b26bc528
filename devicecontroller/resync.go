package devicecontroller

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// resyncer lists all of EdgeX now and then. The message bus is at most
// once, so events can be missed; the list repairs that, and it is the only
// steady-state cost the bridge puts on EdgeX's REST API: a few paged calls
// per kind every ResyncPeriod.
type resyncer struct {
	*shared
	kinds []resyncable
	// now asks for a resync soon: after EdgeX comes back, after the bus
	// reconnects (events were surely missed), or from tests.
	now chan struct{}
}

type resyncable interface {
	resync(ctx context.Context) error
	// listFailed tells the kind that a list (its own or an earlier kind's)
	// failed, so that its objects can say why they wait.
	listFailed(ctx context.Context, err error)
}

func newResyncer(s *shared) *resyncer {
	return &resyncer{shared: s, now: make(chan struct{}, 1)}
}

// trigger asks for a resync without waiting for it.
func (r *resyncer) trigger() {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

// Start runs resyncs until ctx ends: one at once, retried with backoff until
// it succeeds, then every ResyncPeriod or when triggered. Services come
// first and devices last, so that re-creating a wiped EdgeX adds what
// devices depend on before the devices.
func (r *resyncer) Start(ctx context.Context) error {
	backoff := time.Second
	for {
		wait := r.opts.ResyncPeriod
		if err := r.resyncAll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error(err, "resync failed; nothing was deleted, retrying", "in", backoff)
			wait = backoff
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.now:
		case <-time.After(wait):
		}
	}
}

func (r *resyncer) resyncAll(ctx context.Context) error {
	for i, k := range r.kinds {
		if err := k.resync(ctx); err != nil {
			// The kinds after it are not listed this round: the same
			// EdgeX would most likely refuse them for the same reason.
			for _, later := range r.kinds[i+1:] {
				later.listFailed(ctx, err)
			}
			return err
		}
	}
	return nil
}

// resync lists the kind in EdgeX and acts on the differences: new or
// changed EdgeX objects are imported or reconciled, every object of the kind
// is reconciled once (which repairs anything missed), and imported objects
// the list lacks are deleted, unless so many vanished at once that the
// guard holds them for a person to confirm. A failed or partial list
// changes nothing.
func (s *edgeSync[O, E]) resync(ctx context.Context) error {
	started := time.Now()
	listCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	items, err := s.kind.list(listCtx)
	cancel()
	s.health.observe(ctx, err)
	s.metrics.resyncSeconds.WithLabelValues(s.metrics.pool, s.kind.Name).Observe(time.Since(started).Seconds())
	if err != nil {
		s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.Name, "error").Inc()
		s.listFailed(ctx, err)
		return fmt.Errorf("list %ss in EdgeX: %w", s.kind.Name, err)
	}
	changed, _ := s.view.ApplyList(items, started)
	for _, name := range changed {
		s.queue.Add(name)
	}

	list := s.kind.newList()
	if err := s.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list %ss in the cluster: %w", s.kind.Name, err)
	}
	claimed := map[string]bool{}
	var gone []string
	imported := 0
	for _, obj := range s.kind.items(list) {
		if !s.watches(obj.GetNamespace()) {
			continue
		}
		name := v1alpha1.EdgeXName(obj)
		claimed[name] = true
		_, exists := s.view.Get(name)
		mirror := !s.kind.managed(obj) && !s.rec.awaitingCreation(obj)
		if mirror {
			imported++
		}
		if !exists && mirror && obj.GetDeletionTimestamp().IsZero() && obj.GetCreationTimestamp().Time.Before(started) {
			gone = append(gone, name)
			continue
		}
		if err := s.requeue(ctx, obj); err != nil {
			return err
		}
	}
	for _, name := range s.view.Names() {
		if !claimed[name] {
			s.queue.Add(name) // an import that has not happened yet
		}
	}
	s.weighDeletions(gone, imported)
	s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.Name, "ok").Inc()
	return nil
}

// weighDeletions lets the edge queue delete the imported objects a complete
// list lacked, unless they are more than the guard allows at once.
func (s *edgeSync[O, E]) weighDeletions(gone []string, imported int) {
	allowed := max(s.opts.DeletionGuardMinimum, int(s.opts.DeletionGuardFraction*float64(imported)))
	if len(gone) > allowed {
		why := fmt.Sprintf("EdgeX no longer lists %d of the %d imported %ss of pool %s, more than the %d one resync may delete; "+
			"this looks like a wiped EdgeX, so nothing is deleted until a person confirms: restore EdgeX, or annotate the objects with %s=true",
			len(gone), imported, s.kind.Name, s.opts.NodePool, allowed, v1alpha1.ConfirmEdgeDeletionAnnotation)
		s.guard.hold(s.kind.Name, gone, why)
		s.metrics.deletionsHeld.WithLabelValues(s.metrics.pool, s.kind.Name).Set(float64(len(gone)))
		s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.Name, "held").Inc()
		s.log.Info("mass deletion held for confirmation", "kind", s.kind.Name, "vanished", len(gone), "imported", imported, "allowed", allowed)
	} else {
		s.guard.release(s.kind.Name)
		s.metrics.deletionsHeld.WithLabelValues(s.metrics.pool, s.kind.Name).Set(0)
	}
	for _, name := range gone {
		s.queue.Add(name)
	}
}

func (s *edgeSync[O, E]) listFailed(ctx context.Context, err error) {
	if s.view.ListFailed(err) {
		// Objects waiting for the first list say why it does not come
		// (Unauthorized, EdgeXUnreachable, ...), not just "waiting".
		s.requeueAll(ctx)
	}
}

// requeueAll asks the kind's controller to reconcile every object of the
// kind the bridge watches.
func (s *edgeSync[O, E]) requeueAll(ctx context.Context) {
	list := s.kind.newList()
	if err := s.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return // the next failed list tries again
	}
	for _, obj := range s.kind.items(list) {
		if s.watches(obj.GetNamespace()) {
			if s.requeue(ctx, obj) != nil {
				return
			}
		}
	}
}
