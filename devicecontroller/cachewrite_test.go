package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
)

// The informer cache is shared by everything in the manager and is never
// written: objects listed without deep copies are read only. An import that
// also carries another controller's finalizer is deleted at the edge; the
// edge queue removes the bridge's finalizer and deletes it, while the cache
// is read without copies. Every version of the object the reader met in the
// cache must still be what it was when first met (removing a finalizer in
// place would shift the cache's own slice), and under -race the reads and
// any write to the cache's maps and slices are reported.
func TestEdgeDeletionNeverWritesTheCache(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true})
	edgeName := "quiet-device"
	d := simulator.DemoDevices()[1]
	d.Name, d.Id, d.AutoEvents = edgeName, "", nil
	if _, err := p.sim.AddDevice(d); err != nil {
		t.Fatal(err)
	}
	r := p.launchBridge()
	p.bridge, p.stop = r.bridge, r.stop
	name := convert.PreferredKubeName(p.name, edgeName)
	waitSynced(p, named(&v1alpha1.Device{}, name))
	update(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) {
		d.Finalizers = append(d.Finalizers, "example.com/keep")
	})

	// The reader keeps, for every version of the object it meets in the
	// cache, the cache's own copy (a list item without deep copy shares its
	// maps and slices with the cache) and a deep copy as first met, and
	// compares them at every pass.
	type seen struct {
		cached v1alpha1.Device
		copied *v1alpha1.Device
	}
	var (
		mu      sync.Mutex
		all     = map[string]seen{}
		written []string
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	cache := r.mgr.GetCache()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var list v1alpha1.DeviceList
			if err := cache.List(context.Background(), &list, client.InNamespace(p.ns), client.UnsafeDisableDeepCopy); err != nil {
				continue
			}
			mu.Lock()
			for i := range list.Items {
				if obj := list.Items[i]; obj.Name == name {
					if _, ok := all[obj.ResourceVersion]; !ok {
						all[obj.ResourceVersion] = seen{cached: obj, copied: obj.DeepCopy()}
					}
				}
			}
			for rv, s := range all {
				if !equality.Semantic.DeepEqual(&s.cached, s.copied) {
					written = append(written, fmt.Sprintf("resourceVersion %s: finalizers %v (were %v)", rv, s.cached.Finalizers, s.copied.Finalizers))
					all[rv] = seen{cached: s.cached, copied: s.cached.DeepCopy()}
				}
			}
			mu.Unlock()
		}
	}()

	if err := p.sim.DeleteDevice(edgeName); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if d.DeletionTimestamp == nil || !slices.Equal(d.Finalizers, []string{"example.com/keep"}) {
			return fmt.Errorf("deleting %v, finalizers %v", d.DeletionTimestamp != nil, d.Finalizers)
		}
		return nil
	})
	close(stop)
	<-done
	update(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) { d.Finalizers = nil })
	waitGone(p, &v1alpha1.Device{}, name)

	if len(all) == 0 {
		t.Fatal("the reader never met the device in the cache")
	}
	for _, w := range written {
		t.Errorf("the cache was written: %s", w)
	}
}
