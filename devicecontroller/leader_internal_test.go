package devicecontroller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// What the pool's beacons let a replica conclude, from when it heard its
// own beacon and others' leading beacons. Durations are ago, from now.
func TestBeaconDecisions(t *testing.T) {
	const (
		interval = 2 * time.Second
		lease    = 15 * time.Second
		renew    = 10 * time.Second
		never    = time.Duration(-1)
	)
	cases := []struct {
		name string
		// heardSelf and liveSince are how long ago; never for not yet.
		heardSelf, liveSince time.Duration
		// otherLeading is how long ago another replica claimed to lead.
		otherLeading time.Duration

		wantMayHold     bool   // a leader cut from the cloud keeps leading
		wantTakeoverErr string // "" when a standby may take the lease over
	}{
		{name: "pool path live for long, no other leader", heardSelf: time.Second, liveSince: time.Minute, otherLeading: never,
			wantMayHold: true},
		{name: "pool path live for less than a lease", heardSelf: time.Second, liveSince: 5 * time.Second, otherLeading: never,
			wantMayHold: true, wantTakeoverErr: "less than the lease duration"},
		{name: "own beacon not heard lately", heardSelf: 12 * time.Second, liveSince: time.Minute, otherLeading: never,
			wantTakeoverErr: "does not hear its own beacon"},
		{name: "never heard itself", heardSelf: never, liveSince: never, otherLeading: never,
			wantTakeoverErr: "does not hear its own beacon"},
		{name: "another replica led a moment ago", heardSelf: time.Second, liveSince: time.Minute, otherLeading: 3 * time.Second,
			wantTakeoverErr: "leads"},
		{name: "another replica led longer than a lease ago", heardSelf: time.Second, liveSince: time.Minute, otherLeading: 20 * time.Second,
			wantMayHold: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			ago := func(d time.Duration) time.Time {
				if d == never {
					return time.Time{}
				}
				return now.Add(-d)
			}
			b := &beacon{identity: "me", interval: interval, others: map[string]time.Time{}}
			b.heardSelf, b.liveSince = ago(tc.heardSelf), ago(tc.liveSince)
			if tc.otherLeading != never {
				b.others["other"] = ago(tc.otherLeading)
			}
			mayHold := b.heardSelfWithin(renew) && b.otherLeader(lease) == ""
			if mayHold != tc.wantMayHold {
				t.Errorf("a leader cut from the cloud may hold on: %v, want %v", mayHold, tc.wantMayHold)
			}
			err := b.refusal(lease, true)
			switch {
			case tc.wantTakeoverErr == "" && err != nil:
				t.Errorf("a standby may not take over: %v", err)
			case tc.wantTakeoverErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantTakeoverErr)):
				t.Errorf("takeover error %v, want one saying %q", err, tc.wantTakeoverErr)
			}
		})
	}
}

// Hearing beacons: one's own starts or continues the live stretch, a gap of
// more than three intervals restarts it, and only others' leading beacons
// count as other leaders. Anything else on the topic is ignored.
func TestBeaconHearing(t *testing.T) {
	b := &beacon{identity: "me", interval: time.Hour, others: map[string]time.Time{}}
	b.hear("", []byte(`{"identity":"me","leading":true}`))
	first := b.liveSince
	if first.IsZero() || b.heardSelf.IsZero() {
		t.Fatal("hearing its own beacon did not start the live stretch")
	}
	b.hear("", []byte(`{"identity":"me"}`))
	if b.liveSince != first {
		t.Error("a beacon within the interval restarted the live stretch")
	}
	b.hear("", []byte(`{"identity":"standby","leading":false}`))
	if b.otherLeader(time.Minute) != "" {
		t.Error("a standby's beacon counted as another leader")
	}
	for _, junk := range []string{``, `{}`, `not json`, `{"identity":""}`, `[1,2]`} {
		b.hear("", []byte(junk))
	}
	if len(b.others) != 0 {
		t.Errorf("junk on the beacon topic counted: %v", b.others)
	}
	b.hear("", []byte(`{"identity":"rival","leading":true}`))
	if got := b.otherLeader(time.Minute); got != "rival" {
		t.Errorf("other leader %q, want rival", got)
	}
}

// Whether a replica the cloud does not answer may lead through a silent
// pool depends on the last leader it knows of: a silent pool does not prove
// that a leader in another pod stopped, since that leader may have lost
// only the broker and still lead through the cloud.
func TestPoolLeadNeedsTheLastLeaderToBeThisPods(t *testing.T) {
	const lease = 15 * time.Second
	beaconOf := func(identity, seat string, leading bool) []byte {
		b := `{"identity":"` + identity + `","leading":` + map[bool]string{true: "true", false: "false"}[leading]
		if seat != "" {
			b += `,"seat":"` + seat + `"`
		}
		return []byte(b + "}")
	}
	cases := []struct {
		name string
		// learn feeds the replica what it heard and read, oldest first.
		learn func(l *LeaderLock)
		// notSilent leaves the pool's silence unproven.
		notSilent bool
		want      string // "" when the replica may lead through the pool
	}{
		{name: "no leader ever known", learn: func(*LeaderLock) {}},
		{name: "this replica led last", learn: func(l *LeaderLock) {
			l.remember(&resourcelock.LeaderElectionRecord{HolderIdentity: "pod-0_me"}, true)
		}},
		{name: "its predecessor in the same pod led last, as the retained beacon says", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-0_before", "pod-0", true))
		}},
		{name: "a replica in another pod led last", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-1_x", "pod-1", true))
		}, want: "replica pod-1_x in pod pod-1, may still lead through the cloud"},
		{name: "the cloud's lease names a replica never heard in the pool", learn: func(l *LeaderLock) {
			l.remember(&resourcelock.LeaderElectionRecord{HolderIdentity: "elsewhere"}, false)
		}, want: "replica elsewhere in an unknown pod"},
		{name: "the cloud's lease names a replica heard in another pod", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-1_x", "pod-1", false))
			l.remember(&resourcelock.LeaderElectionRecord{HolderIdentity: "pod-1_x"}, false)
		}, want: "in pod pod-1"},
		{name: "the last leader released the lease", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-1_x", "pod-1", true))
			l.remember(&resourcelock.LeaderElectionRecord{HolderIdentity: ""}, false)
		}},
		{name: "another pod's leader, then this replica took the lease in the cloud", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-1_x", "pod-1", true))
			l.remember(&resourcelock.LeaderElectionRecord{HolderIdentity: "pod-0_me"}, true)
		}},
		{name: "a standby's beacon names no leader", learn: func(l *LeaderLock) {
			l.beacon.hear("", beaconOf("pod-1_x", "pod-1", false))
		}},
		{name: "silence comes first", notSilent: true, learn: func(*LeaderLock) {}, want: "less than the lease duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := LeaderElection{Identity: "pod-0_me", Seat: "pod-0", LeaseDuration: lease}
			l := &LeaderLock{opts: opts, beacon: &beacon{identity: opts.Identity, seat: opts.Seat, interval: time.Second,
				others: map[string]time.Time{}, seats: map[string]string{}}}
			tc.learn(l)
			// Whatever was heard happened longer than a lease ago; since
			// then the pool has carried only this replica's beacons.
			l.beacon.others = map[string]time.Time{}
			now := time.Now()
			l.beacon.heardSelf, l.beacon.liveSince = now, now.Add(-2*lease)
			if tc.notSilent {
				l.beacon.liveSince = now.Add(-lease / 2)
			}
			err := l.PoolLeadRefusal()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("may not lead through the pool: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("refusal %v, want one saying %q", err, tc.want)
			}
		})
	}
}
