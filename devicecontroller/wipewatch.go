package devicecontroller

import (
	"context"
	"fmt"
	"time"

	"github.com/edgebridge/edgebridge/edgex"
)

// wipeWatch notices a wiped or replaced EdgeX between resyncs. A wiped
// database announces nothing on the bus, so without it the bridge would go
// on reporting InSync until the next full resync, ten minutes later by
// default. It costs one REST call per WipeCheckInterval: a list of one
// object of one kind at a time, in turn, whose totalCount and first object
// it compares with the edge view. What it finds triggers a resync, which
// weighs it like any other.
type wipeWatch struct {
	*shared
	kinds  []probed
	resync func()
}

type probed interface {
	// probe compares EdgeX's count and first object of the kind with the
	// view, and says what differs ("" for nothing) and whether that alone
	// proves the view wrong.
	probe(ctx context.Context) (drift string, certain bool, err error)
}

// Start probes until ctx ends; it is a manager runnable (leader only).
func (w *wipeWatch) Start(ctx context.Context) error {
	ticker := time.NewTicker(w.opts.WipeCheckInterval)
	defer ticker.Stop()
	// A count that differs may be an event on its way; it is acted on when
	// the kind's next probe finds the same difference.
	suspected := make([]string, len(w.kinds))
	for i := 0; ; i = (i + 1) % len(w.kinds) {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if down, _ := w.health.Down(); down {
			continue // the health probe already watches, and resyncs on recovery
		}
		// A failed probe is simply made again at the kind's next turn.
		probeCtx, cancel := context.WithTimeout(edgex.WithoutRetries(ctx), w.opts.WipeCheckInterval)
		drift, certain, err := w.kinds[i].probe(probeCtx)
		cancel()
		if err != nil {
			// Outages are the health probe's to judge; this one only
			// looks for a wipe, and looks again next time.
			w.log.V(1).Info("wipe probe failed", "error", err.Error())
			continue
		}
		switch {
		case drift == "":
			suspected[i] = ""
		case certain || drift == suspected[i]:
			w.log.Info("EdgeX differs from what the bridge knows; resyncing", "why", drift)
			w.metrics.wipeChecksTriggered.WithLabelValues(w.metrics.pool).Inc()
			suspected[i] = ""
			w.resync()
		default:
			suspected[i] = drift
		}
	}
}

// probe lists one object of the kind and compares with the view.
func (s *edgeQueue[O, E]) probe(ctx context.Context) (string, bool, error) {
	if !s.view.Complete() {
		return "", false, nil // the first resync is still to come
	}
	page, err := s.kind.firstPage(ctx)
	if err != nil {
		return "", false, fmt.Errorf("count %ss in EdgeX: %w", s.kind.name(), err)
	}
	known := s.view.Len()
	if page.TotalCount == 0 && known > 0 {
		return fmt.Sprintf("EdgeX lists no %ss, where it had %d", s.kind.name(), known), true, nil
	}
	if len(page.Items) > 0 {
		first := page.Items[0]
		name := s.kind.edgeName(first)
		if had, ok := s.view.Get(name); ok && s.kind.edgeID(had) != "" && s.kind.edgeID(first) != s.kind.edgeID(had) {
			return fmt.Sprintf("EdgeX holds %s %q under a new id", s.kind.name(), name), true, nil
		}
	}
	if page.TotalCount != known {
		return fmt.Sprintf("EdgeX holds %d %ss, the bridge knows %d", page.TotalCount, s.kind.name(), known), false, nil
	}
	return "", false, nil
}
