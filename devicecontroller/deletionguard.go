package devicecontroller

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// deletionGuard remembers, per kind, what the last resync decided about the
// imported objects its complete list lacked: held until a person confirms
// (too many at once, or EdgeX looked wiped), or allowed to go. A name the
// guard has not weighed is not deleted on list evidence at all.
type deletionGuard struct {
	mu      sync.Mutex
	held    map[string]map[string]struct{}
	allowed map[string]map[string]struct{}
	why     map[string]string
}

type deletionVerdict int

const (
	deletionNotWeighed deletionVerdict = iota
	deletionHeld
	deletionAllowed
)

func newDeletionGuard() *deletionGuard {
	return &deletionGuard{held: map[string]map[string]struct{}{}, allowed: map[string]map[string]struct{}{}, why: map[string]string{}}
}

func nameSet(names []string) map[string]struct{} {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return set
}

// hold records that the kind's vanished names wait for a person, and why.
func (g *deletionGuard) hold(kind string, names []string, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[kind], g.why[kind] = nameSet(names), why
	delete(g.allowed, kind)
}

// allow records that the kind's vanished names may be deleted.
func (g *deletionGuard) allow(kind string, names []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allowed[kind] = nameSet(names)
	delete(g.held, kind)
	delete(g.why, kind)
}

// forget drops the verdict about one name, once acted on.
func (g *deletionGuard) forget(kind, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.held[kind], name)
	delete(g.allowed[kind], name)
}

func (g *deletionGuard) verdict(kind, name string) (deletionVerdict, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.held[kind][name]; ok {
		return deletionHeld, g.why[kind]
	}
	if _, ok := g.allowed[kind][name]; ok {
		return deletionAllowed, ""
	}
	return deletionNotWeighed, ""
}

// deletionThreshold is how many of a kind's imports vanishing from one
// complete list make the resync hold their deletions: Fraction of them,
// at least Minimum, and never more than a majority, so that a list lacking
// most of a pool's imports (all of them, in a pool of one) is always held.
func (o Options) deletionThreshold(imported int) int {
	t := max(o.DeletionGuardMinimum, int(math.Ceil(o.DeletionGuardFraction*float64(imported))))
	return max(1, min(t, imported/2+1))
}

// weighDeletions lets the edge queue delete the imports a complete list
// lacked, unless they are too many at once or any kind's list showed a
// wipe: then each says DeletionHeld, with an Event, until a person
// confirms it or EdgeX has it again.
func (s *edgeQueue[O, E]) weighDeletions(pass resyncPass, wipe []string) {
	gone := pass.gone
	threshold := s.opts.deletionThreshold(pass.imported)
	tooMany := len(gone) >= threshold
	if len(gone) > 0 && (tooMany || len(wipe) > 0) {
		why := fmt.Sprintf("EdgeX no longer lists %d of the %d imported %ss of pool %s", len(gone), pass.imported, s.kind.name(), s.opts.NodePool)
		if tooMany {
			why += fmt.Sprintf(", at least the %d at which one resync holds deletions", threshold)
		}
		if len(wipe) > 0 {
			why += ", and EdgeX looks wiped or replaced: " + strings.Join(wipe, "; ")
		}
		why += fmt.Sprintf("; nothing is deleted until a person confirms: restore EdgeX (or restart its device services), or annotate the objects with %s=true",
			v1alpha1.ConfirmEdgeDeletionAnnotation)
		s.guard.hold(s.kind.name(), gone, why)
		s.metrics.deletionsHeld.WithLabelValues(s.metrics.pool, s.kind.name()).Set(float64(len(gone)))
		s.metrics.resyncs.WithLabelValues(s.metrics.pool, s.kind.name(), "held").Inc()
		s.log.Info("deletions held for confirmation", "kind", s.kind.name(), "vanished", len(gone), "imported", pass.imported,
			"threshold", threshold, "wipeEvidence", wipe)
	} else {
		s.guard.allow(s.kind.name(), gone)
		s.metrics.deletionsHeld.WithLabelValues(s.metrics.pool, s.kind.name()).Set(0)
	}
	for _, name := range gone {
		s.names.Add(name)
	}
}
