package devicecontroller

import (
	"reflect"
	"sync"
	"time"
)

// edgeView is the bridge's memory of one EdgeX kind in its pool. System
// events keep it current between full lists; reconciles read it instead of
// asking EdgeX, which is what makes steady state free of REST calls.
//
// It also keeps the evidence deletion needs: a name is known to be gone only
// after a delete system event (a tombstone) or when a complete, successful
// list lacked it and nothing has been heard of it since.
type edgeView[E any] struct {
	name     func(E) string
	modified func(E) int64
	// compact, when set, returns the copy of an object the view keeps: the
	// same values, sharing the strings that many objects repeat.
	compact func(E) E

	mu         sync.RWMutex
	objects    map[string]viewEntry[E]
	tombstones map[string]time.Time
	// complete is set once a full list succeeded; before that, absence
	// proves nothing.
	complete bool
	// listStarted is when the last complete list began; anything heard of
	// after it is newer than the list.
	listStarted time.Time
	// listErr is why the last list failed, until one succeeds: before the
	// first complete list it is the only answer to "why is nothing synced?".
	listErr error
}

type viewEntry[E any] struct {
	obj E
	// heard is when the bridge last learned of this object, by event or list.
	heard time.Time
}

func newEdgeView[E any](name func(E) string, modified func(E) int64) *edgeView[E] {
	return &edgeView[E]{
		name:       name,
		modified:   modified,
		objects:    map[string]viewEntry[E]{},
		tombstones: map[string]time.Time{},
	}
}

// Get returns what EdgeX last said of the named object.
func (v *edgeView[E]) Get(name string) (E, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.objects[name]
	return e.obj, ok
}

// Complete reports whether a full list has been applied, so that absence
// from the view means absence from EdgeX (as of that list).
func (v *edgeView[E]) Complete() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.complete
}

// Len is the number of objects the view holds.
func (v *edgeView[E]) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.objects)
}

// Names returns the names the view holds.
func (v *edgeView[E]) Names() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	names := make([]string, 0, len(v.objects))
	for n := range v.objects {
		names = append(names, n)
	}
	return names
}

// Put records an object EdgeX announced (add or update event) or that the
// bridge itself created or updated. It reports whether the view changed.
func (v *edgeView[E]) Put(obj E, at time.Time) bool {
	name := v.name(obj)
	v.mu.Lock()
	defer v.mu.Unlock()
	old, had := v.objects[name]
	if had && v.modified(old.obj) > v.modified(obj) {
		// A late message about an older version: keep the newer one.
		return false
	}
	delete(v.tombstones, name)
	v.objects[name] = viewEntry[E]{obj: v.kept(obj), heard: at}
	return !had || !reflect.DeepEqual(old.obj, obj)
}

func (v *edgeView[E]) kept(obj E) E {
	if v.compact == nil {
		return obj
	}
	return v.compact(obj)
}

// Remove records positive evidence that EdgeX deleted the object: a delete
// system event, or a delete the bridge itself made and EdgeX confirmed.
func (v *edgeView[E]) Remove(name string, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.objects, name)
	v.tombstones[name] = at
}

// Deleted reports whether EdgeX is known to have deleted the object: a
// tombstone, or absence from the last complete list with nothing heard of
// it since that list started.
func (v *edgeView[E]) Deleted(name string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if _, ok := v.objects[name]; ok {
		return false
	}
	if _, ok := v.tombstones[name]; ok {
		return true
	}
	return v.complete
}

// DeletedByEvent reports whether a delete system event (not a list) is the
// evidence; such deletions bypass the mass-deletion guard, because EdgeX
// said so object by object.
func (v *edgeView[E]) DeletedByEvent(name string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.tombstones[name]
	return ok
}

// ApplyList replaces the view with a complete, successful list that began
// at started. Objects heard of after the list began are kept as they are
// (the list may predate them), and so are tombstones newer than the list.
// It returns the names that are new or changed, and the names that the list
// proved gone.
func (v *edgeView[E]) ApplyList(items []E, started time.Time) (changed, gone []string) {
	listed := make(map[string]E, len(items))
	for _, it := range items {
		listed[v.name(it)] = it
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, obj := range listed {
		if at, dead := v.tombstones[name]; dead && at.After(started) {
			continue
		}
		old, had := v.objects[name]
		if had && (old.heard.After(started) || v.modified(old.obj) > v.modified(obj)) {
			continue
		}
		delete(v.tombstones, name)
		v.objects[name] = viewEntry[E]{obj: v.kept(obj), heard: started}
		if !had || !reflect.DeepEqual(old.obj, obj) {
			changed = append(changed, name)
		}
	}
	for name, e := range v.objects {
		if _, ok := listed[name]; ok || e.heard.After(started) {
			continue
		}
		delete(v.objects, name)
		gone = append(gone, name)
	}
	// Tombstones older than a complete list are subsumed by it.
	for name, at := range v.tombstones {
		if !at.After(started) {
			delete(v.tombstones, name)
		}
	}
	v.complete = true
	v.listStarted = started
	v.listErr = nil
	return changed, gone
}

// ListFailed records why a list failed. It reports whether the view is
// still waiting for its first complete list and the failure is new in
// kind, which is when objects should be told why they are not synced yet.
func (v *edgeView[E]) ListFailed(err error) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	news := v.listErr == nil || reasonFor(v.listErr) != reasonFor(err)
	v.listErr = err
	return !v.complete && news
}

// ListError is why the last list failed, or nil once one succeeded.
func (v *edgeView[E]) ListError() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.listErr
}
