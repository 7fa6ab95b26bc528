package devicecontroller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// While the API server is slow, telemetry's status writes wait for the
// pacer; a reading of a property a person set a desired value for does
// not: it confirms or contradicts a command, and a bridge restarted
// before it was written would command from the status left behind
// (TestBinaryKilledMidImportConverges found a device left at the old
// value that way).
func TestReadingsOfDesiredPropertiesAreNotPaced(t *testing.T) {
	for _, tc := range []struct {
		name        string
		managed     bool
		desired     string
		wantWritten bool
	}{
		{"managed device, desired property", true, "true", true},
		{"managed device, property without a desired value", true, "", false},
		{"unmanaged device", false, "true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &v1alpha1.Device{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool-gpio"},
				Spec:       v1alpha1.DeviceSpec{Managed: tc.managed, NodePool: "pool"},
			}
			if tc.desired != "" {
				dev.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"pin": {Name: "pin", DesiredValue: tc.desired}}
			}
			c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(dev).WithStatusSubresource(dev).Build()
			opts := Options{NodePool: "pool", Namespaces: []string{"ns"}, StatusWriters: 1, MaxReadingSeries: 10}
			s := &shared{opts: opts, client: c, cloud: NewCloud("pool", time.Second), metrics: newMetrics(t.Name())}
			tel := newTelemetry(s, &commandDriver{shared: s}, nil)
			// The API server was slow: the pacer is at a write a minute,
			// and its one token is spent.
			tel.pacer.limiter.SetLimit(1.0 / 60)
			tel.pacer.limiter.Allow()

			key := types.NamespacedName{Namespace: "ns", Name: "pool-gpio"}
			tel.mu.Lock()
			st := tel.stateLocked(key)
			st.edgexName = v1alpha1.EdgeXName(dev)
			st.pending = []reading{{resource: "pin", value: "false", valueType: "Bool", originNanos: time.Now().UnixNano()}}
			tel.mu.Unlock()

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			tel.flush(ctx, key)

			got := &v1alpha1.Device{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(dev), got); err != nil {
				t.Fatal(err)
			}
			written := got.Status.DeviceProperties["pin"].ActualValue == "false"
			if written != tc.wantWritten {
				t.Fatalf("reading written: %v, want %v (status %+v)", written, tc.wantWritten, got.Status.DeviceProperties)
			}
		})
	}
}
