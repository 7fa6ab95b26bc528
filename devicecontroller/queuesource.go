package devicecontroller

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// queueSource is a controller's source for work that comes from outside
// the cluster's watches: names from EdgeX's system events and lists for
// the edge queue, devices with readings to write for telemetry. Whoever
// finds work adds it here without waiting, from any goroutine (the bus's
// delivery path included); the controller, which controller-runtime runs
// only on the leader, takes it from its own queue. Work found before the
// controller started is queued when it starts.
type queueSource[T comparable] struct {
	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[T]
	early   map[T]struct{}
	stopped chan struct{}
}

func newQueueSource[T comparable]() *queueSource[T] {
	return &queueSource[T]{early: map[T]struct{}{}, stopped: make(chan struct{})}
}

// Start is called by the controller with its queue and its lifetime.
func (s *queueSource[T]) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[T]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = queue
	for item := range s.early {
		queue.Add(item)
	}
	s.early = nil
	go func() {
		<-ctx.Done()
		close(s.stopped)
	}()
	return nil
}

// Add queues item now.
func (s *queueSource[T]) Add(item T) { s.AddAfter(item, 0) }

// AddAfter queues item after d; before the controller started, at its
// start.
func (s *queueSource[T]) AddAfter(item T, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.queue == nil:
		s.early[item] = struct{}{}
	case d <= 0:
		s.queue.Add(item)
	default:
		s.queue.AddAfter(item, d)
	}
}

// Stopped is closed once the controller's lifetime ended.
func (s *queueSource[T]) Stopped() <-chan struct{} { return s.stopped }
