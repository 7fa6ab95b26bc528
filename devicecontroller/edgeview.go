package devicecontroller

import (
	"bytes"
	"fmt"
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
	// codec, when set, keeps each object encoded (see viewCodec).
	codec viewCodec[E]

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

// viewCodec keeps a kind's objects encoded in its view. A decoded EdgeX
// device is mostly small maps (protocols and their properties, tags), and
// Go gives every small map room for eight entries: at 10,000 devices the
// decoded copies were 11.5 MB of the bridge's heap, the encoded ones a
// third of that. Devices are read from the view a few times per change,
// never per reading, so decoding on each read costs little.
type viewCodec[E any] interface {
	encode(E) ([]byte, error)
	decode([]byte) (E, error)
}

type viewEntry[E any] struct {
	// obj is the object, or nil when it is kept encoded.
	obj     *E
	encoded []byte
	// modified is EdgeX's modification time of the object.
	modified int64
	// heard is when the bridge last learned of this object, by event or list.
	heard time.Time
}

// entry is what the view keeps of obj, heard of at at.
func (v *edgeView[E]) entry(obj E, at time.Time) viewEntry[E] {
	e := viewEntry[E]{modified: v.modified(obj), heard: at}
	if v.codec != nil {
		if b, err := v.codec.encode(obj); err == nil {
			e.encoded = b
			return e
		}
		// Not encodable (a value JSON has no text for): kept as it is.
	}
	e.obj = &obj
	return e
}

// object returns the entry's object.
func (v *edgeView[E]) object(e viewEntry[E]) E {
	if e.obj != nil {
		return *e.obj
	}
	obj, err := v.codec.decode(e.encoded)
	if err != nil {
		// The view decodes only what it encoded itself from the same type.
		panic(fmt.Sprintf("edge view: decode an object it encoded: %v", err))
	}
	return obj
}

// same reports whether the entry holds what the entry made of obj holds.
func (v *edgeView[E]) same(e, made viewEntry[E]) bool {
	if e.obj != nil || made.obj != nil {
		return e.obj != nil && made.obj != nil && reflect.DeepEqual(*e.obj, *made.obj)
	}
	return bytes.Equal(e.encoded, made.encoded)
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
	if !ok {
		var zero E
		return zero, false
	}
	return v.object(e), true
}

// Has reports whether the view holds the named object, without decoding it.
func (v *edgeView[E]) Has(name string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.objects[name]
	return ok
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
	made := v.entry(obj, at)
	v.mu.Lock()
	defer v.mu.Unlock()
	old, had := v.objects[name]
	if had && old.modified > made.modified {
		// A late message about an older version: keep the newer one.
		return false
	}
	delete(v.tombstones, name)
	v.objects[name] = made
	return !had || !v.same(old, made)
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
	listed := make(map[string]viewEntry[E], len(items))
	for _, it := range items {
		listed[v.name(it)] = v.entry(it, started)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, made := range listed {
		if at, dead := v.tombstones[name]; dead && at.After(started) {
			continue
		}
		old, had := v.objects[name]
		if had && (old.heard.After(started) || old.modified > made.modified) {
			continue
		}
		delete(v.tombstones, name)
		v.objects[name] = made
		if !had || !v.same(old, made) {
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
