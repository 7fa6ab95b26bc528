package devicecontroller

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// A reconcile waits only while the cache is older than the reconciler's
// own last write; from the first copy that has it on, nothing is held back.
func TestOwnWritesHoldBackOnlyOlderCopies(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "d"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	var w ownWrites
	steps := []struct {
		do         string
		key        types.NamespacedName
		rv         string
		wantBehind bool
	}{
		{"check", key, "5", false},   // never written
		{"record", key, "10", false}, // written at 10
		{"check", key, "9", true},    // the cache has not seen it
		{"check", other, "9", false}, // other objects are not held
		{"check", key, "100", false}, // a longer version is newer
		{"check", key, "9", false},   // caught up once: forgotten
		{"record", key, "12", false},
		{"check", key, "12", false}, // exactly the write
		{"record", key, "20", false},
		{"check", key, "not-a-number", false}, // incomparable: never held
		{"record", key, "30", false},
		{"forget", key, "", false},
		{"check", key, "29", false}, // deleted
	}
	for i, s := range steps {
		switch s.do {
		case "record":
			w.record(s.key, s.rv)
		case "forget":
			w.forget(s.key)
		case "check":
			if got := w.behind(s.key, s.rv); got != s.wantBehind {
				t.Fatalf("step %d: behind(%s, %q) = %v, want %v", i, s.key.Name, s.rv, got, s.wantBehind)
			}
		}
	}
	if len(w.rv) != 0 {
		t.Errorf("entries left: %v", w.rv)
	}
}
