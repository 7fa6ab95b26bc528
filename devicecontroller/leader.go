package devicecontroller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Leader election that rides out a cloud outage.
//
// The pool's replicas compete for a Lease in the cloud, as controller-runtime
// does. Plain leader election gives the lease up when it cannot be renewed
// for --leader-renew-deadline, and the process exits: a cloud outage longer
// than that would stop the pool's bridge exactly when the pool is on its
// own. So the lease may also be renewed in the pool, on the EdgeX message
// bus every replica of the pool uses anyway:
//
//   - Every replica publishes a beacon on <prefix>/edgebridge/leader/<pool>
//     every retry period, saying whether it leads, and listens to all
//     beacons, its own included. Hearing its own beacon proves the path to
//     and from the broker.
//   - The leader keeps leading while the cloud does not answer, as long as
//     it hears its own beacon within the renew deadline and hears no other
//     replica claim to lead. Without a working pool path it gives up as
//     before, after the renew deadline.
//   - A standby takes the lease over from another holder only after it has
//     heard its own beacons for a whole lease duration and no other
//     replica's leading beacon in that time. A leader cut off from the
//     cloud but not from the pool therefore keeps the pool, and the standby
//     does not start a second one; a standby that cannot hear the pool does
//     not take over.
//   - While the cloud does not answer, a replica that finds the pool silent
//     in the same way (its own beacons for a whole lease duration, no other
//     replica's leading beacon) takes the lead through the pool, but only
//     if the last leader it knows of ran in its own pod, or none is known.
//     This is how a bridge restarted during an outage (a pod crash, a node
//     reboot) leads again: behind YurtHub its caches fill from the node's
//     cache, but the lease can be neither read nor written until the cloud
//     returns. During an outage pods are restarted in place, never made
//     anew (only the cloud could), so the pod's name is the same.
//   - Why only then: a silent pool does not prove that the last leader
//     stopped. It may have lost the broker and still lead through the
//     cloud, which this replica cannot see. Its leading beacons are
//     retained by the broker, so that even a replica started after it
//     went silent knows who led last. A leader in another pod is waited
//     for until the cloud answers; one in the same pod is this replica's
//     own predecessor, which cannot be running beside it.
//
// The cloud Lease stays the authority whenever it answers: a record held by
// another replica is obeyed at once, and a renewal made after an outage is
// an optimistic-concurrency update that fails if anyone wrote the lease
// meanwhile. A lead taken through the pool is confirmed against the cloud
// when it answers again: if another replica renewed the cloud lease after
// the pool lead began, that replica wins and this one gives the lead up.

// LeaderElection configures the pool's lease. Zero durations take the
// defaults below, which are controller-runtime's.
type LeaderElection struct {
	Namespace, Name string
	// Seat names where this replica runs: its pod, which keeps its name
	// when the container is restarted. Default: Identity when set, else
	// the hostname.
	Seat string
	// Identity names this replica; default <seat>_<uuid>.
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Beacon is the pool's path between replicas; nil falls back to plain
	// leader election (the leader gives up without the cloud).
	Beacon BeaconBus
	// Topic of the beacons; default edgebridge/leader/<Name>.
	Topic string
}

// BeaconTopic is where one pool's replicas publish their beacons: under the
// EdgeX message bus's base topic, which the broker's ACLs already grant the
// bridge, and apart from every topic EdgeX itself uses.
func BeaconTopic(busPrefix, pool string) string {
	return strings.TrimSuffix(busPrefix, "/") + "/edgebridge/leader/" + pool
}

// BeaconBus is what the beacon needs of the pool's message bus
// (messagebus.Client implements it).
type BeaconBus interface {
	Publish(ctx context.Context, topic string, payload []byte) error
	// PublishRetained is Publish with the broker keeping the message for
	// later subscribers.
	PublishRetained(ctx context.Context, topic string, payload []byte) error
	Subscribe(filter string, handler func(topic string, payload []byte)) error
}

// The leader-election timing cmd/devicecontroller and controller-runtime
// default to.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

func (o LeaderElection) withDefaults() LeaderElection {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Seat == "" && o.Identity != "" {
		o.Seat = o.Identity
	}
	if o.Seat == "" {
		o.Seat, _ = os.Hostname()
	}
	if o.Identity == "" {
		o.Identity = o.Seat + "_" + string(uuid.NewUUID())
	}
	if o.Topic == "" {
		o.Topic = "edgebridge/leader/" + o.Name
	}
	return o
}

// LeaderLock is the pool's lease: give it to the manager
// (LeaderElectionResourceLockInterface, with the same durations) and add
// it to the manager as a runnable, which runs the beacon.
type LeaderLock struct {
	inner  resourcelock.Interface
	cloud  *Cloud
	opts   LeaderElection
	beacon *beacon

	mu sync.Mutex
	// known is the last record read from or written to the cloud, or
	// renewed through the pool.
	known *resourcelock.LeaderElectionRecord
	// renewed is when this replica last renewed its lease, either way.
	renewed time.Time
	// read says the inner lock holds the lease as the cloud last gave it;
	// it cannot update the lease before.
	read bool
	// poolSince is when this replica took the lead through the pool, until
	// the cloud confirms it.
	poolSince time.Time
	// lastRefusal is the last reason logged for not leading through the
	// pool.
	lastRefusal string
}

var _ resourcelock.Interface = (*LeaderLock)(nil)

// NewLeaderLock builds the lock on a Lease; cfg should come from
// cloud.Config, so that lease calls tell the cloud's reachability too.
func NewLeaderLock(cfg *rest.Config, cloud *Cloud, opts LeaderElection) (*LeaderLock, error) {
	opts = opts.withDefaults()
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election"))
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	inner, err := resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, opts.Name,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: opts.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	l := &LeaderLock{inner: inner, cloud: cloud, opts: opts}
	if opts.Beacon != nil {
		l.beacon = &beacon{bus: opts.Beacon, topic: opts.Topic, identity: opts.Identity, seat: opts.Seat,
			interval: opts.RetryPeriod, leading: l.leading, others: map[string]time.Time{}, seats: map[string]string{}}
	}
	return l, nil
}

// callTimeout bounds one call to the cloud, so that a black-holed link
// leaves the renew deadline room to renew through the pool.
func (l *LeaderLock) callTimeout() time.Duration { return l.opts.RenewDeadline / 2 }

// Get reads the lease from the cloud; while the cloud does not answer and
// this replica may hold on through the pool, it returns the record this
// replica holds.
func (l *LeaderLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	callCtx, cancel := context.WithTimeout(ctx, l.callTimeout())
	defer cancel()
	rec, raw, err := l.inner.Get(callCtx)
	if err == nil {
		l.remember(rec, false)
		l.mu.Lock()
		l.read = true
		l.mu.Unlock()
		return rec, raw, nil
	}
	held, ok := l.heldThroughPool(err)
	if !ok && l.poolConsents(err) {
		// Vacant, as far as the pool can tell: client-go then goes on to
		// Update, which takes the lead through the pool.
		held, ok = &resourcelock.LeaderElectionRecord{}, true
	}
	if ok {
		raw, jerr := json.Marshal(held)
		if jerr != nil {
			return nil, nil, jerr
		}
		return held, raw, nil
	}
	return nil, nil, err
}

// Create makes the lease in the cloud.
func (l *LeaderLock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	callCtx, cancel := context.WithTimeout(ctx, l.callTimeout())
	defer cancel()
	if err := l.inner.Create(callCtx, rec); err != nil {
		return err
	}
	l.remember(&rec, true)
	l.mu.Lock()
	l.read = true
	l.mu.Unlock()
	return nil
}

// Update renews the lease, takes it over, or releases it. Taking it over
// from another holder needs the pool's consent (see the package comment);
// a renewal the cloud does not answer succeeds if the pool vouches for it.
func (l *LeaderLock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	mine := rec.HolderIdentity == l.opts.Identity
	l.mu.Lock()
	takeover := mine && l.known != nil && l.known.HolderIdentity != "" && l.known.HolderIdentity != l.opts.Identity
	previous := ""
	if l.known != nil {
		previous = l.known.HolderIdentity
	}
	l.mu.Unlock()
	if mine && l.beacon != nil {
		if err := l.beacon.refusal(l.opts.LeaseDuration, takeover); err != nil {
			if takeover {
				return fmt.Errorf("take the lease over from %s: %w", previous, err)
			}
			return fmt.Errorf("renew the lease: %w", err)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, l.callTimeout())
	defer cancel()
	err := l.confirmPoolLead(callCtx)
	if err == nil {
		err = l.inner.Update(callCtx, rec)
	}
	if err == nil {
		l.remember(&rec, mine)
		l.mu.Lock()
		l.poolSince = time.Time{}
		l.mu.Unlock()
		return nil
	}
	if mine && !takeover {
		if _, ok := l.heldThroughPool(err); ok {
			l.remember(&rec, true)
			return nil
		}
	}
	if mine && l.poolConsents(err) {
		l.remember(&rec, true)
		l.mu.Lock()
		if l.poolSince.IsZero() {
			l.poolSince = time.Now()
		}
		l.mu.Unlock()
		return nil
	}
	return err
}

// confirmPoolLead reads the lease before this replica writes it for the
// first time after leading through the pool (or at all, for a replica
// started while the cloud was away): the inner lock can only update the
// lease it read, and a lease renewed by another replica since the pool lead
// began means that replica led in the cloud meanwhile, and wins.
func (l *LeaderLock) confirmPoolLead(ctx context.Context) error {
	l.mu.Lock()
	read, since := l.read, l.poolSince
	l.mu.Unlock()
	if read && since.IsZero() {
		return nil
	}
	rec, _, err := l.inner.Get(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.read = true
	l.mu.Unlock()
	if rec.HolderIdentity != "" && rec.HolderIdentity != l.opts.Identity && !since.IsZero() && !rec.RenewTime.Time.Before(since) {
		l.remember(rec, false)
		l.mu.Lock()
		l.poolSince = time.Time{}
		l.mu.Unlock()
		// A conflict, not a plain error: a plain error reads as no answer.
		return apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, l.opts.Name,
			fmt.Errorf("replica %s renewed the lease in the cloud at %s, after this replica took the lead through the pool at %s",
				rec.HolderIdentity, rec.RenewTime.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339)))
	}
	return nil
}

// poolConsents reports whether err says the cloud did not answer and the
// pool lets this replica lead (see PoolLeadRefusal).
func (l *LeaderLock) poolConsents(err error) bool {
	if !noAnswer(err) || l.beacon == nil {
		return false
	}
	refusal := l.PoolLeadRefusal()
	l.logPoolRefusal(refusal)
	return refusal == nil
}

// PoolLeadRefusal says why this replica may not take the lead through the
// pool now, or nil when it may: it must have heard its own beacons for a
// whole lease duration and no leading beacon but its own, and the last
// leader it knows of must have run in its own pod.
func (l *LeaderLock) PoolLeadRefusal() error {
	if l.beacon == nil {
		return errors.New("leader election has no pool message bus")
	}
	if err := l.beacon.refusal(l.opts.LeaseDuration, true); err != nil {
		return err
	}
	last, seat := l.beacon.lastLeader()
	if last == "" || last == l.opts.Identity || seat == l.opts.Seat {
		return nil
	}
	if seat == "" {
		seat = "an unknown pod"
	} else {
		seat = "pod " + seat
	}
	return fmt.Errorf("the last leader, replica %s in %s, may still lead through the cloud; this replica waits for the cloud to answer", last, seat)
}

// logPoolRefusal logs why a replica without the cloud does not lead
// through the pool, each time the reason changes.
func (l *LeaderLock) logPoolRefusal(refusal error) {
	msg := ""
	if refusal != nil {
		msg = refusal.Error()
	}
	l.mu.Lock()
	changed := msg != l.lastRefusal
	l.lastRefusal = msg
	l.mu.Unlock()
	if changed && refusal != nil {
		log.Log.WithName("leader").Info("Not leading through the pool while the cloud does not answer", "lease", l.opts.Name, "reason", msg)
	}
}

// heldThroughPool returns the record this replica holds when err says the
// cloud did not answer and the pool vouches for this replica's lead.
func (l *LeaderLock) heldThroughPool(err error) (*resourcelock.LeaderElectionRecord, bool) {
	if !noAnswer(err) || l.beacon == nil {
		return nil, false
	}
	l.mu.Lock()
	known := l.known
	l.mu.Unlock()
	if known == nil || known.HolderIdentity != l.opts.Identity || !l.leading() {
		return nil, false
	}
	if !l.beacon.heardSelfWithin(l.opts.RenewDeadline) || l.beacon.otherLeader(l.opts.LeaseDuration) != "" {
		return nil, false
	}
	rec := *known
	return &rec, true
}

func (l *LeaderLock) remember(rec *resourcelock.LeaderElectionRecord, renewed bool) {
	if l.beacon != nil {
		l.beacon.noteLeader(rec.HolderIdentity)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cp := *rec
	l.known = &cp
	if renewed && rec.HolderIdentity == l.opts.Identity {
		l.renewed = time.Now()
	}
}

// leading reports whether this replica holds an unexpired lease.
func (l *LeaderLock) leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known != nil && l.known.HolderIdentity == l.opts.Identity && time.Since(l.renewed) < l.opts.LeaseDuration
}

// RecordEvent is a no-op: leadership changes are logged by the manager,
// and an Event could not be written while the cloud is away anyway.
func (l *LeaderLock) RecordEvent(string) {}

// Identity is this replica's name in the lease.
func (l *LeaderLock) Identity() string { return l.opts.Identity }

// Describe names the lease.
func (l *LeaderLock) Describe() string { return l.inner.Describe() }

// NeedLeaderElection is false: the beacon runs on standbys too.
func (l *LeaderLock) NeedLeaderElection() bool { return false }

// Start runs the beacon until ctx ends; without a beacon bus it only
// waits. It is a manager runnable.
func (l *LeaderLock) Start(ctx context.Context) error {
	if l.beacon == nil {
		<-ctx.Done()
		return nil
	}
	return l.beacon.run(ctx)
}

// beacon is one replica's presence on the pool's message bus.
type beacon struct {
	bus      BeaconBus
	topic    string
	identity string
	seat     string
	interval time.Duration
	leading  func() bool

	mu sync.Mutex
	// heardSelf is when this replica last heard its own beacon, and
	// liveSince when that hearing began without a gap.
	heardSelf, liveSince time.Time
	// others is when each other replica was last heard claiming to lead.
	others map[string]time.Time
	// seats is the pod each replica heard runs in.
	seats map[string]string
	// last is the last leader this replica knows of, from the cloud's
	// lease or the pool's beacons ("" for none, or a released lease).
	last string
}

type beaconMessage struct {
	Identity string `json:"identity"`
	// Seat is the replica's pod; absent from older bridges' beacons.
	Seat    string `json:"seat,omitempty"`
	Leading bool   `json:"leading"`
}

func (b *beacon) run(ctx context.Context) error {
	if err := b.bus.Subscribe(b.topic, b.hear); err != nil {
		return fmt.Errorf("subscribe to the leader beacon %s: %w", b.topic, err)
	}
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	for {
		leading := b.leading()
		payload, err := json.Marshal(beaconMessage{Identity: b.identity, Seat: b.seat, Leading: leading})
		if err != nil {
			return err
		}
		pubCtx, cancel := context.WithTimeout(ctx, b.interval)
		// A failed publish shows as a beacon not heard. A leader's beacon
		// is retained, so that a replica started later learns who led
		// last (see the package comment); a standby's must not replace it.
		if leading {
			_ = b.bus.PublishRetained(pubCtx, b.topic, payload)
		} else {
			_ = b.bus.Publish(pubCtx, b.topic, payload)
		}
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (b *beacon) hear(_ string, payload []byte) {
	var m beaconMessage
	if err := json.Unmarshal(payload, &m); err != nil || m.Identity == "" {
		return // not a beacon; nothing to learn from it
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.Identity == b.identity {
		if b.heardSelf.IsZero() || now.Sub(b.heardSelf) > 3*b.interval {
			b.liveSince = now
		}
		b.heardSelf = now
		return
	}
	if m.Seat != "" {
		if b.seats == nil {
			b.seats = map[string]string{}
		}
		b.seats[m.Identity] = m.Seat
	}
	if m.Leading {
		b.others[m.Identity] = now
		b.last = m.Identity
	}
}

// noteLeader records the holder of the lease as the cloud last gave it, or
// as this replica renewed it.
func (b *beacon) noteLeader(identity string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = identity
}

// lastLeader names the last leader this replica knows of and its pod, ""
// when unknown.
func (b *beacon) lastLeader() (identity, seat string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == b.identity {
		return b.last, b.seat
	}
	return b.last, b.seats[b.last]
}

// heardSelfWithin reports whether the pool carried this replica's beacon
// within d.
func (b *beacon) heardSelfWithin(d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.heardSelf.IsZero() && time.Since(b.heardSelf) <= d
}

// otherLeader names a replica heard claiming to lead within d, if any.
func (b *beacon) otherLeader(d time.Duration) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, at := range b.others {
		if time.Since(at) <= d {
			return id
		}
	}
	return ""
}

// refusal says why this replica must not take (takeover) or keep the
// lease, as the pool's beacons tell: another replica claimed to lead within
// d, or, to take it over, the pool does not prove that none did.
func (b *beacon) refusal(d time.Duration, takeover bool) error {
	if other := b.otherLeader(d); other != "" {
		return fmt.Errorf("replica %s leads the pool, as its beacon says", other)
	}
	if takeover {
		return b.silentFor(d)
	}
	return nil
}

// silentFor reports why the pool does not prove that no other replica
// led during the last d, or nil when it does.
func (b *beacon) silentFor(d time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case b.heardSelf.IsZero() || now.Sub(b.heardSelf) > 3*b.interval:
		return errors.New("this replica does not hear its own beacon on the pool's message bus, so it cannot tell whether the holder still leads there")
	case now.Sub(b.liveSince) < d:
		return fmt.Errorf("the pool's message bus has carried this replica's beacon for %s only, less than the lease duration %s",
			now.Sub(b.liveSince).Round(time.Second), d)
	}
	return nil
}
