package devicecontroller

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Shutdown bounds: the manager gets ShutdownGrace to stop its runnables
// (manager.Options.GracefulShutdownTimeout), and RunManager gives up
// waiting for it StopBound after the signal, inside the 15 s a bridge may
// take to stop and well inside Kubernetes' default grace period of 30 s.
const (
	ShutdownGrace = 10 * time.Second
	StopBound     = 13 * time.Second
)

// RunManager runs mgr until ctx ends, and returns at most StopBound later.
//
// controller-runtime's manager (v0.25) never returns from Start when its
// context ends before its caches have synced: its wait for the caches
// ignores the cancellation and spins. That is what a bridge sees while it
// may not list its objects (RBAC not applied yet) or while the API server
// refuses its selector, and a Pod that ignores SIGTERM is killed only after
// its grace period. Nothing of the bridge runs before the caches sync, so
// then there is nothing to wait for, and it returns without the manager.
func RunManager(ctx context.Context, mgr manager.Manager) error {
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if !cacheSynced(mgr.GetCache()) {
		mgr.GetLogger().Info("stopping before the caches synced; nothing had started")
		return nil
	}
	select {
	case err := <-done:
		return err
	case <-time.After(StopBound):
		mgr.GetLogger().Info("the manager did not stop in time; stopping without it", "bound", StopBound)
		return nil
	}
}

// cacheSyncedWait bounds how long cacheSynced looks: caches that synced
// answer at once, and those that did not are not waited for.
const cacheSyncedWait = 100 * time.Millisecond

// cacheSynced reports whether the caches have synced, without waiting for
// them. It asks with a live context: given one already cancelled, the
// cache's wait chooses at random between "started" and "cancelled", and a
// bridge that had synced and worked for hours would, about every other
// time, stop without letting its runnables finish.
func cacheSynced(c cache.Cache) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cacheSyncedWait)
	defer cancel()
	return c.WaitForCacheSync(ctx)
}
