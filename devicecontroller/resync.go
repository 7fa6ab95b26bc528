package devicecontroller

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
	// resync lists the kind and acts on what is new or changed; it
	// returns what the list lacked, for weighDeletions to judge once every
	// kind was listed.
	resync(ctx context.Context) (resyncPass, error)
	// weighDeletions decides about the imports the kind's list lacked,
	// given what every kind's list showed of a wipe.
	weighDeletions(pass resyncPass, wipeEvidence []string)
	// listFailed tells the kind that a list (its own or an earlier kind's)
	// failed, so that its objects can say why they wait.
	listFailed(ctx context.Context, err error)
}

// resyncPass is what one kind's complete list showed.
type resyncPass struct {
	// gone are the EdgeX names of imports the list lacked that nothing in
	// the pool needs: candidates for deletion.
	gone []string
	// imported is how many of the kind's objects mirror EdgeX.
	imported int
	// wipeEvidence is what the list showed of a wiped or replaced EdgeX
	// beyond counting.
	wipeEvidence []string
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

// resyncAll lists every kind, then weighs the deletions of each with the
// evidence of all: a wipe seen in one kind's list (a service under a new id,
// say) holds the deletions of the others too. A failed list deletes
// nothing, in any kind.
func (r *resyncer) resyncAll(ctx context.Context) error {
	passes := make([]resyncPass, len(r.kinds))
	var wipe []string
	for i, k := range r.kinds {
		pass, err := k.resync(ctx)
		if err != nil {
			// The kinds after it are not listed this round: the same
			// EdgeX would most likely refuse them for the same reason.
			for _, later := range r.kinds[i+1:] {
				later.listFailed(ctx, err)
			}
			return err
		}
		passes[i] = pass
		wipe = append(wipe, pass.wipeEvidence...)
	}
	for i, k := range r.kinds {
		k.weighDeletions(passes[i], wipe)
	}
	return nil
}

// resync lists the kind in EdgeX and acts on the differences: new or
// changed EdgeX objects are imported or reconciled, and every object of the
// kind is reconciled once (which repairs anything missed, and re-creates
// what the cloud owns). Imports the list lacks are returned for weighing,
// with what the list showed of a wipe. A failed or partial list changes
// nothing.
func (s *edgeQueue[O, E]) resync(ctx context.Context) (resyncPass, error) {
	started := time.Now()
	// The REST client retries a failed page here, unlike in reconciles: a
	// list of thousands of objects is many pages, and one transient error
	// would otherwise throw all of them away for the resync's own retry.
	listCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	items, err := s.kind.list(listCtx)
	cancel()
	s.health.observe(ctx, err)
	s.metrics.resyncSeconds.WithLabelValues(s.metrics.pool, s.kind.name()).Observe(time.Since(started).Seconds())
	if err != nil {
		s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.name(), "error").Inc()
		s.listFailed(ctx, err)
		return resyncPass{}, fmt.Errorf("list %ss in EdgeX: %w", s.kind.name(), err)
	}
	changed, _ := s.view.ApplyList(items, started)
	queued := make(map[string]bool, len(changed))
	for _, name := range changed {
		queued[name] = true
		s.names.Add(name)
	}

	list := s.kind.newList()
	if err := s.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return resyncPass{}, fmt.Errorf("list %ss in the cluster: %w", s.kind.name(), err)
	}
	var pass resyncPass
	claimed := map[string]bool{}
	var renewed, lost []string
	for _, obj := range s.kind.items(list) {
		if !s.serves(obj) {
			continue
		}
		name := v1alpha1.EdgeXName(obj)
		claimed[name] = true
		edge, exists := s.view.Get(name)
		knownID := s.kind.knownEdgeID(obj)
		mirror := s.rec.mirrorsEdge(obj)
		if mirror {
			pass.imported++
		}
		switch {
		case exists && knownID != "" && s.kind.edgeID(edge) != "" && s.kind.edgeID(edge) != knownID:
			// The same name under a new id: EdgeX lost the object and
			// someone (a device service, say) registered it again.
			renewed = append(renewed, name)
		case !exists && knownID != "" && !mirror && obj.GetDeletionTimestamp().IsZero():
			// EdgeX held it once, and the cloud owns it: it must be
			// re-created, which a person rarely causes on purpose.
			lost = append(lost, name)
		}
		if !exists && mirror && obj.GetDeletionTimestamp().IsZero() && obj.GetCreationTimestamp().Time.Before(started) {
			kept, _, err := s.rec.keptAtEdge(ctx, obj)
			if err != nil {
				return resyncPass{}, err
			}
			if !kept {
				pass.gone = append(pass.gone, name)
				continue
			}
		}
		if err := s.requeue(ctx, obj); err != nil {
			return resyncPass{}, err
		}
	}
	for _, name := range s.view.Names() {
		// A name queued above may be imported by now, and a second turn
		// would find the cache without it yet.
		if !claimed[name] && !queued[name] {
			s.names.Add(name) // an import that has not happened yet
		}
	}
	if len(renewed) > 0 {
		pass.wipeEvidence = append(pass.wipeEvidence, fmt.Sprintf("%d %ss are back under new EdgeX ids (%s)", len(renewed), s.kind.name(), examples(renewed)))
	}
	if len(lost) > 0 {
		pass.wipeEvidence = append(pass.wipeEvidence, fmt.Sprintf("%d %ss applied in the cloud and created in EdgeX are gone from it (%s)", len(lost), s.kind.name(), examples(lost)))
	}
	s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.name(), "ok").Inc()
	return pass, nil
}

// examples names a few of names, for a message.
func examples(names []string) string {
	sort.Strings(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

func (s *edgeQueue[O, E]) listFailed(ctx context.Context, err error) {
	if s.view.ListFailed(err) {
		// Objects waiting for the first list say why it does not come
		// (Unauthorized, EdgeXUnreachable, ...), not just "waiting".
		s.requeueAll(ctx)
	}
}

// requeueAll asks the kind's controller to reconcile every object of the
// kind the bridge watches.
func (s *edgeQueue[O, E]) requeueAll(ctx context.Context) {
	list := s.kind.newList()
	if err := s.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return // the next failed list tries again
	}
	for _, obj := range s.kind.items(list) {
		if s.serves(obj) {
			if s.requeue(ctx, obj) != nil {
				return
			}
		}
	}
}
