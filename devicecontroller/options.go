package devicecontroller

import (
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// Options configure one pool's bridge. Zero values take the documented
// defaults (see withDefaults).
type Options struct {
	// NodePool is the pool this bridge serves. Required.
	NodePool string
	// Namespaces the bridge watches; objects imported from EdgeX go to the
	// first. Required.
	Namespaces []string

	// ResyncPeriod is how often the whole of EdgeX is listed to repair
	// what the at-most-once message bus missed. Default 10m.
	ResyncPeriod time.Duration
	// DeletionGuardFraction and DeletionGuardMinimum bound what one resync
	// may delete: when at least max(Minimum, Fraction x imported objects of
	// a kind) of them vanish from one complete list, or more than half of
	// them whatever the settings (all of them in a pool of one), it looks
	// like a wiped EdgeX, not intent, so the deletions are held until a
	// person confirms them. Evidence of a wipe beyond counting holds them
	// whatever their number. Defaults 0.3 and 5.
	DeletionGuardFraction float64
	DeletionGuardMinimum  int

	// WipeCheckInterval is how often one kind in turn is counted in EdgeX
	// (a list of one object), so that a wiped or replaced EdgeX, which
	// announces nothing, is noticed within three intervals at most rather
	// than at the next resync. Default 20s: three calls a minute.
	WipeCheckInterval time.Duration

	// Workers is how many objects of each kind are reconciled at once, and
	// how many edge changes are processed at once. Default 16.
	Workers int

	// StatusInterval is the least time between two telemetry status writes
	// for one device. Default 5s.
	StatusInterval time.Duration
	// StatusWriters is how many telemetry status writes are in flight at
	// once. Default 4. Telemetry writes coalesce: a device whose write
	// waits simply carries newer readings when its turn comes, so more
	// writers buy little freshness, while every write in flight is one
	// more request the API server runs beside everybody else's. Behind a
	// busy API server, 16 writers in each of 20 bridges kept 320 status
	// writes in flight, and a person's kubectl patch waited seconds behind
	// them.
	StatusWriters int
	// StatusWriteRate is the pool's budget of telemetry status writes a
	// second, averaged over 75 s (see statusBudgetWindow), on top of the
	// pacing by the API server's answers; 0 sets none. A property's first
	// value in status is not counted: it is what a person waits for. Pools share
	// one API server, and what a status write costs it outlasts the write:
	// it holds every version of a Device in its watch cache for 75 s or
	// more, so its heap, and the length of each of its garbage
	// collections, follows the status writes of every pool together
	// (docs/scaling.md). Each pool's share of what the API server takes is
	// an operator's decision; the pacing alone keeps the API server
	// answering, not roomy.
	StatusWriteRate float64
	// ConnectedRefresh bounds how stale status.lastConnected may be while a
	// device keeps reporting values that do not change (which are otherwise
	// not written, to keep the API server quiet): such a device gets one
	// write of lastConnected alone per ConnectedRefresh. Default 10m;
	// negative turns it off.
	ConnectedRefresh time.Duration
	// KeepManagedFields keeps the API server's record of field owners
	// (managedFields) on objects nobody applies server-side; by default
	// the bridge empties it, once per object (see managedfields.go).
	KeepManagedFields bool
	// ManagedFieldsQuiet is how long the bridge must have had no
	// reconcile before it empties a record: imports and people's edits
	// come first. Default 5s.
	ManagedFieldsQuiet time.Duration
	// MaxReadingSeries caps the per-reading Prometheus gauges. Default 10000.
	MaxReadingSeries int
	// Northbound, when set, re-publishes each device's readings on
	// NorthboundPrefix/<pool>/<namespace>/<device>/<source>.
	Northbound       Publisher
	NorthboundPrefix string
	// NorthboundQueue is how many events wait for the northbound broker.
	// Publishing runs apart from the EdgeX bus, which never waits for it:
	// when the queue is full, as behind a stalled broker, events are not
	// re-published and edgebridge_northbound_dropped_total counts them.
	// Default 4096.
	NorthboundQueue int
	// NorthboundTimeout bounds one northbound publish. Default 5s.
	NorthboundTimeout time.Duration

	// CommandTransport names how commands travel, "rest" or "mqtt", for
	// metrics. Default "rest".
	CommandTransport string
	// CommandTimeout bounds one command. Default 10s.
	CommandTimeout time.Duration
	// CommandRetryBase and CommandRetryMax bound the backoff between
	// retries of a failed command. Defaults 1s and 2m.
	CommandRetryBase, CommandRetryMax time.Duration
	// CommandRate and CommandBurst limit the commands one device receives
	// per second, so that a runaway edit loop cannot hammer it. Defaults 5
	// and 10.
	CommandRate  float64
	CommandBurst int
	// MaxCommandsInFlight bounds concurrent commands across all devices.
	// Default 64.
	MaxCommandsInFlight int

	// EventSource names the bridge in Kubernetes Events. Default
	// "edgebridge-<pool>".
	EventSource string

	// PoolSelection says how the manager's cache selects the pool's
	// objects (see PoolCacheOptions and DetectPoolSelection); with
	// SelectByLabel the bridge also keeps the pool label on every object.
	// Default SelectByField.
	PoolSelection PoolSelection

	// DeviceFields is the store given to PoolCacheOptions, if any: the
	// bridge reads there what the cache keeps outside its Devices.
	DeviceFields *DeviceFields

	// Cloud tracks whether the API server answers; the manager's
	// configuration should come from Cloud.Config. While the cloud is
	// unreachable, status writes wait (coalescing in memory) and /readyz
	// says so. Default: a Cloud that learns nothing, always reachable.
	Cloud *Cloud
}

func (o Options) withDefaults() Options {
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = 10 * time.Minute
	}
	if o.DeletionGuardFraction == 0 {
		o.DeletionGuardFraction = 0.3
	}
	if o.DeletionGuardMinimum == 0 {
		o.DeletionGuardMinimum = 5
	}
	if o.WipeCheckInterval == 0 {
		o.WipeCheckInterval = 20 * time.Second
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if o.StatusInterval == 0 {
		o.StatusInterval = 5 * time.Second
	}
	if o.StatusWriters == 0 {
		o.StatusWriters = 4
	}
	if o.ManagedFieldsQuiet == 0 {
		o.ManagedFieldsQuiet = 5 * time.Second
	}
	if o.ConnectedRefresh == 0 {
		o.ConnectedRefresh = 10 * time.Minute
	}
	if o.MaxReadingSeries == 0 {
		o.MaxReadingSeries = 10000
	}
	if o.NorthboundPrefix == "" {
		o.NorthboundPrefix = "edgebridge"
	}
	if o.NorthboundQueue <= 0 {
		o.NorthboundQueue = 4096
	}
	if o.NorthboundTimeout <= 0 {
		o.NorthboundTimeout = 5 * time.Second
	}
	if o.CommandTransport == "" {
		o.CommandTransport = "rest"
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 10 * time.Second
	}
	if o.CommandRetryBase == 0 {
		o.CommandRetryBase = time.Second
	}
	if o.CommandRetryMax == 0 {
		o.CommandRetryMax = 2 * time.Minute
	}
	if o.CommandRate == 0 {
		o.CommandRate = 5
	}
	if o.CommandBurst == 0 {
		o.CommandBurst = 10
	}
	if o.MaxCommandsInFlight == 0 {
		o.MaxCommandsInFlight = 64
	}
	if o.EventSource == "" {
		o.EventSource = "edgebridge-" + o.NodePool
	}
	if o.PoolSelection == "" {
		o.PoolSelection = SelectByField
	}
	if o.Cloud == nil {
		o.Cloud = NewCloud(o.NodePool, 0)
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.NodePool == "" {
		errs = append(errs, errors.New("a node pool is required"))
	}
	if len(o.Namespaces) == 0 {
		errs = append(errs, errors.New("at least one namespace is required"))
	}
	if o.DeletionGuardFraction < 0 || o.DeletionGuardFraction > 1 {
		errs = append(errs, fmt.Errorf("deletion guard fraction %v is not between 0 and 1", o.DeletionGuardFraction))
	}
	return errors.Join(errs...)
}

// CacheOptions restrict the manager's cache to one pool's objects in the
// given namespaces, with a field selector on spec.nodePool (a CRD selectable
// field); PoolCacheOptions chooses the selector.
func CacheOptions(pool string, namespaces []string) cache.Options {
	return PoolCacheOptions(pool, namespaces, SelectByField, nil)
}
