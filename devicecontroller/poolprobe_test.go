package devicecontroller_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/devicecontroller"
)

// meetingReader answers a List only once all three kinds have been asked
// for, as an API server that has just started answers none of them before
// it has filled each one's watch cache: a probe that asks one kind after
// another never gets past the first.
type meetingReader struct {
	answers map[string]error
	mu      sync.Mutex
	asked   int
	all     chan struct{}
}

func (r *meetingReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("the probe only lists")
}

func (r *meetingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	// As the real client does: it writes into the options it is given, so
	// under the race detector lists at once that share them fail here.
	lo := &client.ListOptions{}
	lo.ApplyOptions(opts)
	_ = lo.AsListOptions()
	r.mu.Lock()
	r.asked++
	if r.asked == 3 {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
		return r.answers[fmt.Sprintf("%T", list)]
	case <-ctx.Done():
		return ctx.Err()
	}
}

// The bridge asks about the three kinds at once, so that an API server
// filling its caches delays its start once, not three times, and the
// answer is the same as before.
func TestPoolSelectionProbeAsksAboutTheKindsAtOnce(t *testing.T) {
	refused := apierrors.NewBadRequest(`"spec.nodePool" is not a known field selector`)
	cases := []struct {
		name    string
		answers map[string]error
		want    devicecontroller.PoolSelection
	}{
		{"every kind selectable by field", nil, devicecontroller.SelectByField},
		{"one kind refuses the field", map[string]error{"*v1alpha1.DeviceProfileList": refused}, devicecontroller.SelectByLabel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := &meetingReader{answers: tc.answers, all: make(chan struct{})}
			got, err := devicecontroller.DetectPoolSelection(ctx, r, "pool-a", "default", logr.Discard())
			if err != nil {
				t.Fatalf("probe: %v (it asked %d kinds and waited for the answer to the first)", err, r.asked)
			}
			if got != tc.want {
				t.Errorf("selection = %q, want %q", got, tc.want)
			}
		})
	}
}
