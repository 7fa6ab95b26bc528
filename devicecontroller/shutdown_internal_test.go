package devicecontroller

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// RunManager decides from cacheSynced whether to wait for the manager to
// stop, so it must answer the same every time: a bridge whose caches
// synced stops through the manager (its runnables finish), one whose
// caches never synced returns at once. A cache with no informers syncs as
// soon as it starts, and needs no API server.
func TestCacheSyncedAnswersTheSameEveryTime(t *testing.T) {
	cases := []struct {
		name        string
		start, stop bool
		want        bool
	}{
		{name: "running and synced", start: true, want: true},
		{name: "synced, then stopped by the signal", start: true, stop: true, want: true},
		{name: "never started", want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.New(&rest.Config{Host: "http://127.0.0.1:1"}, cache.Options{Mapper: meta.NewDefaultRESTMapper(nil)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.start {
				go func() { _ = c.Start(ctx) }()
				syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
				defer syncCancel()
				if !c.WaitForCacheSync(syncCtx) {
					t.Fatal("the cache did not sync")
				}
			}
			if tc.stop {
				cancel()
			}
			// Synced caches answer at once; others after cacheSyncedWait.
			calls := 64
			if !tc.want {
				calls = 3
			}
			for i := range calls {
				if got := cacheSynced(c); got != tc.want {
					t.Fatalf("call %d: cacheSynced = %v, want %v", i+1, got, tc.want)
				}
			}
		})
	}
}
