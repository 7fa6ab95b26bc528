package devicecontroller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// commandDriver drives desired device property values to the devices. It is
// level-triggered: whenever a device's reported value differs from the
// desired one (compared by the resource's value type), it sends a command,
// one at a time per device resource, retrying failures with backoff until
// the command succeeds or the desired value changes. Commands run on their
// own goroutines, so a slow device never delays another.
type commandDriver struct {
	*shared
	cmd       CommandSender
	transport string
	profiles  *edgeView[dtos.DeviceProfile]
	services  *edgeView[dtos.DeviceService]
	// requeue asks the device controller to reconcile a device, when a
	// command ends or telemetry shows drift.
	requeue func(types.NamespacedName)
	slots   chan struct{}
	// ping asks core-command whether it answers; nil when the transport
	// offers no way to ask. outage is signalled when a command found
	// core-command unreachable, to start asking.
	ping   func(context.Context) error
	outage chan struct{}

	// unwritten, when set, returns a reading not yet in status, so that
	// drift is corrected while status writes wait for the cloud.
	unwritten func(key types.NamespacedName, resource string) (value string, reportedMs int64, ok bool)

	mu sync.Mutex
	// props is what is remembered per device resource, by device, so
	// that one device's bookkeeping never walks the whole pool.
	props    map[types.NamespacedName]map[string]*propState
	limiters map[types.NamespacedName]*rate.Limiter
	// life is the manager's context while Start runs (this replica leads
	// its pool); every command runs under it. running is false before
	// Start and after its context ended: then nothing is sent. sends
	// counts the commands under way, which Start waits for.
	life    context.Context
	running bool
	// leadingSince is when (ms since the epoch) this process began to
	// lead; reports from before then do not prove a value (see inSync).
	leadingSince atomic.Int64
	sends        sync.WaitGroup
}

// recoveryProbeInterval is how often core-command is asked whether it
// answers again while commands find it unreachable: commands held back by
// their retry backoff go out within about this long of its return.
const recoveryProbeInterval = 500 * time.Millisecond

// notRunningRetry is when a device is looked at again if its reconcile
// came before the command driver started.
const notRunningRetry = 200 * time.Millisecond

type propKey struct {
	device   types.NamespacedName
	resource string
}

// propState is what the command driver remembers of one device resource.
// It is only memory: after a restart, status says what was reported, and
// the command driver starts again from the difference.
type propState struct {
	inFlight bool
	// value is the value the last command carried, and outcome how it ended.
	value    string
	outcome  *v1alpha1.CommandOutcome
	attempts int32
	retryAt  time.Time
	// sentAt is when the last command was sent: readings taken before it
	// may predate the value, the event EdgeX publishes for the write does
	// not (its readings are what the device accepted).
	sentAt time.Time
}

func newCommandDriver(s *shared, cmd CommandSender, transport string, profiles *edgeView[dtos.DeviceProfile],
	services *edgeView[dtos.DeviceService], requeue func(types.NamespacedName)) *commandDriver {
	c := &commandDriver{
		shared: s, cmd: cmd, transport: transport, profiles: profiles, services: services, requeue: requeue,
		slots:    make(chan struct{}, s.opts.MaxCommandsInFlight),
		outage:   make(chan struct{}, 1),
		props:    map[types.NamespacedName]map[string]*propState{},
		limiters: map[types.NamespacedName]*rate.Limiter{},
	}
	if p, ok := cmd.(interface{ Ping(context.Context) error }); ok {
		c.ping = p.Ping
	}
	return c
}

// Start runs while this replica leads its pool (a manager runnable).
// Commands are sent only under ctx, so none goes out after shutdown or
// after leadership is lost, and Start returns only once every command
// under way has ended. Meanwhile it watches for core-command's recovery.
func (c *commandDriver) Start(ctx context.Context) error {
	c.mu.Lock()
	c.life, c.running = ctx, true
	c.leadingSince.Store(time.Now().UnixMilli())
	c.mu.Unlock()
	c.watchRecovery(ctx)
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	c.sends.Wait()
	return nil
}

// watchRecovery waits for a command to find core-command unreachable, then
// asks core-command every recoveryProbeInterval whether it answers; once it
// does, the commands that failed for that are sent at once rather than
// after their grown backoff (see wake).
func (c *commandDriver) watchRecovery(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.outage:
		}
		if c.ping == nil {
			continue
		}
		tick := time.NewTicker(recoveryProbeInterval)
		for answered := false; !answered; {
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case <-tick.C:
			}
			// Each tick is the retry: one attempt per probe.
			pingCtx, cancel := context.WithTimeout(edgex.WithoutRetries(ctx), recoveryProbeInterval)
			answered = c.ping(pingCtx) == nil
			cancel()
		}
		tick.Stop()
		c.wake(v1alpha1.ReasonEdgeXUnreachable)
	}
}

// wake ends the backoff of every command that failed for one of reasons
// (all failed ones when none are given) and asks for their devices to be
// reconciled, so that they are retried now, within each device's
// --command-rate. It runs when EdgeX answers again after an outage.
func (c *commandDriver) wake(reasons ...string) {
	c.mu.Lock()
	devices := map[types.NamespacedName]bool{}
	for device, byResource := range c.props {
		for _, st := range byResource {
			if st.wake(reasons) {
				devices[device] = true
			}
		}
	}
	c.mu.Unlock()
	for d := range devices {
		c.requeue(d)
	}
}

// wake ends the property's backoff if its last command failed for one of
// reasons (for any reason when none are given), and reports whether it
// did. The command driver's mutex must be held.
func (st *propState) wake(reasons []string) bool {
	if st.inFlight || st.outcome == nil || st.outcome.Result != v1alpha1.CommandFailed || st.retryAt.IsZero() {
		return false
	}
	if len(reasons) > 0 && !slices.Contains(reasons, st.outcome.Reason) {
		return false
	}
	st.retryAt = time.Time{}
	return true
}

// drive runs after a device and EdgeX agree: it compares each desired value
// with the reported one, starts the commands needed, and records every
// property's outcome in status and in the PropertiesSynced condition.
func (c *commandDriver) drive(ctx context.Context, dev *v1alpha1.Device, edge dtos.Device) (reconcile.Result, error) {
	key := types.NamespacedName{Namespace: dev.Namespace, Name: dev.Name}
	desired := desiredValues(dev)
	c.forgetOthers(key, desired)
	if len(desired) == 0 {
		if v1alpha1.FindCondition(dev.Status.Conditions, v1alpha1.ConditionPropertiesSynced) != nil {
			c.setPropertiesSynced(dev, true, v1alpha1.ReasonNoDesiredProperties, "no desired property values")
		}
		return reconcile.Result{}, nil
	}
	if !dev.Spec.Managed {
		c.setPropertiesSynced(dev, false, v1alpha1.ReasonNotManaged,
			"commands are sent only to managed devices; set spec.managed: true to make this object the device's truth")
		return reconcile.Result{}, nil
	}
	profile, ok := c.profiles.Get(edge.ProfileName)
	if !ok {
		c.setPropertiesSynced(dev, false, v1alpha1.ReasonDependencyMissing,
			fmt.Sprintf("device profile %q is not in EdgeX (yet)", edge.ProfileName))
		return reconcile.Result{}, nil
	}
	blocked := c.blockedBy(edge)

	var requeueAfter time.Duration
	plans := make([]propertyPlan, 0, len(desired))
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		pl := propertyPlan{name: name, want: desired[name]}
		var found bool
		pl.res, found = convert.Resource(profile, name)
		pl.entry = c.statusEntry(dev, edge.Name, name, pl.res)
		c.overlayUnwritten(key, name, pl.entry)
		putURL := dev.Spec.DeviceProperties[name].PutURL
		var wait time.Duration
		pl.outcome, wait, pl.answered = c.driveOne(key, edge.Name, name, pl.want, putURL, pl.res, found, blocked, pl.entry)
		if wait > 0 && (requeueAfter == 0 || wait < requeueAfter) {
			requeueAfter = wait
		}
		plans = append(plans, pl)
	}
	c.awaitAnswers(ctx, key, plans)

	var pending, failing []string
	var failReason string
	for _, pl := range plans {
		name, want, res, entry, outcome := pl.name, pl.want, pl.res, pl.entry, pl.outcome
		if outcome != nil {
			// lastCommand records what was asked and how it went;
			// actualValue stays what the device itself reported.
			c.announce(dev, name, entry.LastCommand, outcome)
			entry.LastCommand = outcome
		}
		dev.Status.DeviceProperties[name] = *entry
		switch {
		case c.inSync(entry, want, res, c.ownOutcome(propKey{key, name})), c.acceptedHere(key, name, want, entry):
		case outcome != nil && outcome.Result != v1alpha1.CommandSucceeded:
			failing = append(failing, fmt.Sprintf("%s: %s", name, outcome.Message))
			if failReason == "" {
				failReason = outcome.Reason
			}
		default:
			pending = append(pending, name)
		}
	}
	switch {
	case len(failing) > 0:
		c.setPropertiesSynced(dev, false, failReason, strings.Join(failing, "; "))
	case len(pending) > 0:
		c.setPropertiesSynced(dev, false, v1alpha1.ReasonCommandPending, "waiting for "+strings.Join(pending, ", "))
	default:
		c.setPropertiesSynced(dev, true, v1alpha1.ReasonInSync, "every desired value was reported by the device")
	}
	return reconcile.Result{RequeueAfter: requeueAfter}, nil
}

// propertyPlan is what drive decided for one desired property, before
// it is recorded in status.
type propertyPlan struct {
	name, want string
	res        dtos.DeviceResource
	entry      *v1alpha1.ActualPropertyState
	outcome    *v1alpha1.CommandOutcome
	// answered, when drive sent a command, is closed once it ended.
	answered <-chan struct{}
}

// commandAnswerGrace is how long a reconcile that sent commands waits for
// their answers before it writes status. A device answers in a few
// milliseconds (make bench: 2 to 5 ms over REST and MQTT), so the pending
// state and the outcome are then one status write instead of two; a slow
// device's pending state is shown after this long, and its outcome with
// the reconcile its answer asks for.
const commandAnswerGrace = 100 * time.Millisecond

// awaitAnswers waits, up to commandAnswerGrace, for the commands drive
// just sent, and takes the outcome of each one that ended.
func (c *commandDriver) awaitAnswers(ctx context.Context, key types.NamespacedName, plans []propertyPlan) {
	timer := time.NewTimer(commandAnswerGrace)
	defer timer.Stop()
	for i := range plans {
		pl := &plans[i]
		if pl.answered == nil {
			continue
		}
		select {
		case <-pl.answered:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
		if own := c.ownOutcome(propKey{key, pl.name}); own != nil && own.Value == pl.want {
			pl.outcome = own
		}
	}
}

// driveOne decides for one property: nothing to do, blocked, wait, or send.
// It returns the outcome to show, when it must look again later, and, when
// it sent a command, a channel closed once that command ended.
func (c *commandDriver) driveOne(key types.NamespacedName, device, name, want, putURL string, res dtos.DeviceResource, found bool,
	blocked *v1alpha1.CommandOutcome, entry *v1alpha1.ActualPropertyState) (*v1alpha1.CommandOutcome, time.Duration, <-chan struct{}) {
	pk := propKey{key, name}
	c.mu.Lock()
	st := c.stateLocked(pk)
	if st == nil {
		st = &propState{}
		if c.props[key] == nil {
			c.props[key] = map[string]*propState{}
		}
		c.props[key][name] = st
	}
	defer c.mu.Unlock()

	if st.value != want && !st.inFlight {
		// New intent: forget the old value's failures and backoff.
		st.value, st.outcome, st.attempts, st.retryAt = want, nil, 0, time.Time{}
	}
	if refusal := c.refusePutURL(device, name, want, putURL); refusal != nil {
		// Checked first: a putURL that names another device or resource is
		// never followed, and the user learns so even while the device
		// happens to hold the value.
		return refusal, 0, nil
	}
	if found && c.inSync(entry, want, res, st.outcome) {
		return st.outcomeFor(want, entry.LastCommand), 0, nil
	}
	if st.accepted(want, entry) {
		return st.outcome, 0, nil
	}
	if refusal := refuse(name, want, res, found); refusal != nil {
		return refusal, 0, nil
	}
	if blocked != nil {
		b := *blocked
		b.Value = want
		return &b, 0, nil
	}
	if st.inFlight {
		return st.outcomeFor(want, entry.LastCommand), 0, nil
	}
	if now := time.Now(); now.Before(st.retryAt) {
		return st.outcome, st.retryAt.Sub(now), nil
	}
	if !c.running {
		// Not leading (yet, or any more): no command may go out.
		return st.outcomeFor(want, entry.LastCommand), notRunningRetry, nil
	}
	if !c.limiter(key).Allow() {
		return blockedOutcome(want, v1alpha1.ReasonRateLimited,
			fmt.Sprintf("more than %g commands a second for this device; waiting", c.opts.CommandRate)), time.Second, nil
	}
	st.inFlight, st.value, st.sentAt = true, want, time.Now()
	st.attempts++
	c.sends.Add(1)
	answered := make(chan struct{})
	go c.send(c.life, pk, device, want, st.attempts, answered)
	return st.outcomeFor(want, entry.LastCommand), 0, answered
}

// announce records a Warning Event when a property's command starts
// failing or being blocked for a new reason, so that `kubectl describe`
// and event tooling show it; an unchanged outcome is not repeated.
func (c *commandDriver) announce(dev *v1alpha1.Device, name string, prev, cur *v1alpha1.CommandOutcome) {
	if cur.Result == v1alpha1.CommandSucceeded {
		return
	}
	if prev != nil && prev.Result == cur.Result && prev.Reason == cur.Reason && prev.Value == cur.Value {
		return
	}
	c.warn(dev, cur.Reason, "Command", fmt.Sprintf("%s=%s %s: %s", name, truncate(cur.Value, 64), strings.ToLower(string(cur.Result)), cur.Message))
}

// outcomeFor returns the remembered outcome when it is about value, else
// what status already says.
func (st *propState) outcomeFor(value string, shown *v1alpha1.CommandOutcome) *v1alpha1.CommandOutcome {
	if st.outcome != nil && st.outcome.Value == value {
		return st.outcome
	}
	return shown
}

// accepted reports whether the device accepted value and has reported
// nothing since that contradicts it.
func (st *propState) accepted(value string, entry *v1alpha1.ActualPropertyState) bool {
	return st.outcome != nil && st.outcome.Value == value && st.outcome.Result == v1alpha1.CommandSucceeded &&
		entry.LastReported <= st.outcome.Time.UnixMilli()
}

// acceptedHere reports whether this process saw the device accept want,
// with no report since that contradicts it.
func (c *commandDriver) acceptedHere(key types.NamespacedName, name, want string, entry *v1alpha1.ActualPropertyState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateLocked(propKey{key, name})
	return st != nil && st.accepted(want, entry)
}

// inSync reports whether the device itself reported the wanted value after
// the last command that may have gone out. A value status holds only
// because a command succeeded is not trusted here, and neither is a report
// from before this process began to lead: the process before it may have
// sent another command after either, and died before recording it. This
// process's own successes are trusted through propState.accepted instead;
// after a restart, such a value is sent once more unless the device
// reports it again. own is this process's last command of the property, if
// any: its time is exact, where status keeps whole seconds.
func (c *commandDriver) inSync(entry *v1alpha1.ActualPropertyState, want string, res dtos.DeviceResource, own *v1alpha1.CommandOutcome) bool {
	reported := entry.LastReported > 0
	switch last := entry.LastCommand; {
	case !reported:
	case own != nil:
		reported = entry.LastReported >= own.Time.UnixMilli()
	case entry.LastReported < c.leadingSince.Load():
		reported = false
	case last != nil:
		// Only a report from a later second is surely newer than a
		// command status recorded.
		reported = entry.LastReported >= last.Time.Truncate(time.Second).Add(time.Second).UnixMilli()
	}
	return reported && convert.EqualValues(res.Properties.ValueType, want, entry.ActualValue)
}

// ownOutcome is this process's last command outcome of the property.
func (c *commandDriver) ownOutcome(pk propKey) *v1alpha1.CommandOutcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stateLocked(pk); st != nil {
		return st.outcome
	}
	return nil
}

// refusePutURL blocks a property whose putURL is not core-command's URL of
// this device's own command: whoever may edit one Device must not command
// another device through it. A putURL that passes names exactly the
// command the bridge sends anyway, so it needs no sending of its own.
func (c *commandDriver) refusePutURL(device, name, want, putURL string) *v1alpha1.CommandOutcome {
	own := c.cmd.URL(device, name)
	if putURL == "" || putURL == own {
		return nil
	}
	err := edgex.CheckCommandURL(putURL, device, name, own)
	if err == nil {
		return nil
	}
	var e *edgex.Error
	why := err.Error()
	if errors.As(err, &e) {
		why = e.Message
	}
	return blockedOutcome(want, v1alpha1.ReasonInvalidPutURL,
		fmt.Sprintf("spec.deviceProperties[%s].putURL is not followed: %s; leave it empty to use %s", name, why, own))
}

// send runs one command under life, the manager's context, and records
// how it ended. When life ends first, the command is not sent (or is
// abandoned) and nothing is recorded: the next leader starts again from
// the difference status shows.
func (c *commandDriver) send(life context.Context, pk propKey, device, value string, attempt int32, answered chan<- struct{}) {
	defer c.sends.Done()
	defer close(answered)
	select {
	case c.slots <- struct{}{}:
	case <-life.Done():
		c.abandon(pk)
		return
	}
	defer func() { <-c.slots }()
	if life.Err() != nil {
		c.abandon(pk)
		return
	}
	ctx, cancel := context.WithTimeout(life, c.opts.CommandTimeout)
	defer cancel()
	values := map[string]string{pk.resource: value}
	start := time.Now()
	err := c.cmd.Write(ctx, device, pk.resource, values)
	if life.Err() != nil {
		c.abandon(pk)
		return
	}
	c.metrics.commandsSent.WithLabelValues(c.metrics.pool, c.transport).Inc()
	c.metrics.commandSeconds.WithLabelValues(c.metrics.pool, c.transport).Observe(time.Since(start).Seconds())

	outcome := &v1alpha1.CommandOutcome{Value: value, Result: v1alpha1.CommandSucceeded, Time: metav1.Now(), Attempts: attempt}
	if err != nil {
		outcome.Result, outcome.Reason = v1alpha1.CommandFailed, commandReason(err)
		if outcome.Reason == v1alpha1.ReasonTimeout && !c.coreCommandAnswers(life) {
			// Over MQTT a stopped core-command and a slow device look alike:
			// no answer. Only the first is an outage to watch for the end of.
			outcome.Reason = v1alpha1.ReasonEdgeXUnreachable
			err = fmt.Errorf("core-command does not answer: %w", err)
		}
		outcome.Message = truncate(err.Error(), 1024)
		c.metrics.commandsFailed.WithLabelValues(c.metrics.pool, c.transport, outcome.Reason).Inc()
	}
	c.mu.Lock()
	if st := c.stateLocked(pk); st != nil {
		st.inFlight = false
		if st.value == value {
			st.outcome = outcome
			if err != nil {
				st.retryAt = time.Now().Add(c.backoff(attempt))
			} else {
				st.attempts, st.retryAt = 0, time.Time{}
			}
		}
	}
	c.mu.Unlock()
	if err != nil && outcome.Reason == v1alpha1.ReasonEdgeXUnreachable {
		select {
		case c.outage <- struct{}{}:
		default: // recovery is being watched already
		}
	}
	c.requeue(pk.device)
}

// coreCommandAnswers asks core-command whether it is there, when the
// transport can ask; it assumes so otherwise.
func (c *commandDriver) coreCommandAnswers(life context.Context) bool {
	if c.ping == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(life, 2*recoveryProbeInterval)
	defer cancel()
	return c.ping(ctx) == nil
}

// abandon forgets that a command is in flight when the bridge stopped
// leading before it could end.
func (c *commandDriver) abandon(pk propKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stateLocked(pk); st != nil {
		st.inFlight = false
	}
}

// backoff grows exponentially from CommandRetryBase to CommandRetryMax,
// with jitter so that many failing devices do not retry in lockstep.
func (c *commandDriver) backoff(attempt int32) time.Duration {
	d := c.opts.CommandRetryBase
	for i := int32(1); i < attempt && d < c.opts.CommandRetryMax; i++ {
		d *= 2
	}
	d = min(d, c.opts.CommandRetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// confirmedAt is when the command the device last accepted for the
// resource was sent; readings taken before it are stale for that resource.
// The write's own event, taken after it, is what the device reported.
func (c *commandDriver) confirmedAt(device types.NamespacedName, resource string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stateLocked(propKey{device, resource}); st != nil && st.outcome != nil && st.outcome.Result == v1alpha1.CommandSucceeded {
		return st.sentAt
	}
	return time.Time{}
}

// forgetOthers drops what the command driver remembers of properties the device
// no longer wants set.
func (c *commandDriver) forgetOthers(device types.NamespacedName, desired map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byResource := c.props[device]
	for resource, st := range byResource {
		if _, ok := desired[resource]; !ok && !st.inFlight {
			delete(byResource, resource)
		}
	}
	if len(byResource) == 0 {
		delete(c.props, device)
	}
	if len(desired) == 0 {
		delete(c.limiters, device)
	}
}

// stateLocked is what is remembered of one device resource, or nil.
func (c *commandDriver) stateLocked(pk propKey) *propState {
	return c.props[pk.device][pk.resource]
}

// forget drops everything remembered of a deleted device.
func (c *commandDriver) forget(device types.NamespacedName) {
	c.forgetOthers(device, nil)
}

func (c *commandDriver) limiter(device types.NamespacedName) *rate.Limiter {
	l := c.limiters[device]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(c.opts.CommandRate), c.opts.CommandBurst)
		c.limiters[device] = l
	}
	return l
}

// blockedBy says why the device takes no commands now, or nil.
func (c *commandDriver) blockedBy(edge dtos.Device) *v1alpha1.CommandOutcome {
	switch {
	case edge.AdminState == string(v1alpha1.Locked):
		return blockedOutcome("", v1alpha1.ReasonDeviceLocked, "the device is LOCKED in EdgeX; commands resume when it is unlocked")
	case edge.OperatingState == string(v1alpha1.Down):
		return blockedOutcome("", v1alpha1.ReasonDeviceDown, "the device is DOWN in EdgeX; commands resume when it is up")
	}
	if svc, ok := c.services.Get(edge.ServiceName); ok && svc.AdminState == string(v1alpha1.Locked) {
		return blockedOutcome("", v1alpha1.ReasonDeviceLocked,
			fmt.Sprintf("device service %q is LOCKED in EdgeX; commands resume when it is unlocked", edge.ServiceName))
	}
	return nil
}

// refuse checks a value against the profile before it is sent; admission
// normally refused it already, but the profile may have changed since.
func refuse(name, value string, res dtos.DeviceResource, found bool) *v1alpha1.CommandOutcome {
	if !found {
		return blockedOutcome(value, v1alpha1.ReasonUnknownResource, fmt.Sprintf("the device's profile has no resource %q", name))
	}
	if !strings.Contains(res.Properties.ReadWrite, "W") {
		return blockedOutcome(value, v1alpha1.ReasonReadOnly, fmt.Sprintf("resource %q is read-only (%s)", name, res.Properties.ReadWrite))
	}
	if err := convert.CheckValue(convert.ResourcePropertiesFromEdgeX(res.Properties), value); err != nil {
		reason := v1alpha1.ReasonInvalidValue
		if ve, ok := err.(*convert.ValueError); ok {
			reason = ve.Reason
		}
		return blockedOutcome(value, reason, err.Error())
	}
	return nil
}

func blockedOutcome(value, reason, message string) *v1alpha1.CommandOutcome {
	return &v1alpha1.CommandOutcome{Value: value, Result: v1alpha1.CommandBlocked, Reason: reason, Message: message, Time: metav1.Now()}
}

// commandReason names a failed command for status.
func commandReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return v1alpha1.ReasonTimeout
	}
	switch edgex.KindOf(err) {
	case edgex.KindLocked:
		return v1alpha1.ReasonDeviceLocked
	case edgex.KindNotAllowed:
		return v1alpha1.ReasonReadOnly
	case edgex.KindNotFound:
		return v1alpha1.ReasonUnknownResource
	case edgex.KindInvalid:
		return v1alpha1.ReasonInvalidValue
	case edgex.KindUnavailable:
		if unreachable(err) {
			return v1alpha1.ReasonEdgeXUnreachable
		}
		return v1alpha1.ReasonServiceUnavailable
	case edgex.KindUnauthorized:
		return v1alpha1.ReasonUnauthorized
	case edgex.KindInternal, edgex.KindConflict:
		return v1alpha1.ReasonRefused
	default:
		return v1alpha1.ReasonCommandFailed
	}
}

// statusEntry returns the status entry for a property, with its URLs and
// value type filled in.
func (c *commandDriver) statusEntry(dev *v1alpha1.Device, device, name string, res dtos.DeviceResource) *v1alpha1.ActualPropertyState {
	if dev.Status.DeviceProperties == nil {
		dev.Status.DeviceProperties = map[string]v1alpha1.ActualPropertyState{}
	}
	entry := dev.Status.DeviceProperties[name]
	entry.Name = name
	if entry.GetURL == "" {
		entry.GetURL = c.cmd.URL(device, name)
	}
	// Status shows where commands go: the user's putURL only when it is
	// the device's own command URL (see refusePutURL).
	entry.PutURL = c.cmd.URL(device, name)
	if putURL := dev.Spec.DeviceProperties[name].PutURL; putURL != "" && edgex.CheckCommandURL(putURL, device, name, entry.PutURL) == nil {
		entry.PutURL = putURL
	}
	if res.Properties.ValueType != "" {
		entry.ValueType = res.Properties.ValueType
		entry.Units = res.Properties.Units
	}
	return &entry
}

func (c *commandDriver) setPropertiesSynced(dev *v1alpha1.Device, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	v1alpha1.SetCondition(&dev.Status.Conditions, v1alpha1.Condition{
		Type: v1alpha1.ConditionPropertiesSynced, Status: status, Reason: reason,
		Message: truncate(message, 4096), ObservedGeneration: dev.Generation,
	})
}

func desiredValues(dev *v1alpha1.Device) map[string]string {
	out := map[string]string{}
	for name, p := range dev.Spec.DeviceProperties {
		if p.DesiredValue != "" {
			out[name] = p.DesiredValue
		}
	}
	return out
}

// overlayUnwritten puts a reading that status does not hold yet into entry,
// unless the device accepted a command after it was taken.
func (c *commandDriver) overlayUnwritten(key types.NamespacedName, name string, entry *v1alpha1.ActualPropertyState) {
	if c.unwritten == nil {
		return
	}
	if down, _, _ := c.cloud.Down(); !down {
		return // status is current; telemetry writes the rest shortly
	}
	value, ms, ok := c.unwritten(key, name)
	if !ok || ms <= entry.LastReported || ms < c.confirmedAt(key, name).UnixMilli() {
		return
	}
	entry.ActualValue, entry.LastReported = value, ms
}
