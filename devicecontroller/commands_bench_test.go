package devicecontroller

import (
	"fmt"
	"testing"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkCommanderResync is the command driver's share of one full resync of
// a pool in which every device has desired values: each device's reconcile
// asks the command driver to forget what the device no longer wants. Its cost
// must grow with the pool, not with its square.
func BenchmarkCommanderResync(b *testing.B) {
	for _, devices := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			c := &commandDriver{props: map[types.NamespacedName]map[string]*propState{}, limiters: map[types.NamespacedName]*rate.Limiter{}}
			desired := map[string]string{"pin_17": "true", "pin_18": "false"}
			keys := make([]types.NamespacedName, devices)
			for i := range keys {
				keys[i] = types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("device-%05d", i)}
				for res := range desired {
					if c.props[keys[i]] == nil {
						c.props[keys[i]] = map[string]*propState{}
					}
					c.props[keys[i]][res] = &propState{value: desired[res]}
				}
			}
			b.ResetTimer()
			for range b.N {
				for _, key := range keys {
					c.forgetOthers(key, desired)
				}
			}
		})
	}
}
