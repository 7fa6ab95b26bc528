package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// Objects too big for the bridge and EdgeX never get in: the CRD schema
// refuses them with a message that names the field.
func TestHugeObjectsAreRefusedNamingTheField(t *testing.T) {
	p := startPool(t, poolConfig{noBridge: true})
	cases := []struct {
		name   string
		change func(d *v1alpha1.Device)
		want   []string
	}{
		{"1025 labels", func(d *v1alpha1.Device) { d.Spec.Labels = repeat("label", 1025) }, []string{"spec.labels", "1024"}},
		{"a label of 1025 characters", func(d *v1alpha1.Device) { d.Spec.Labels = []string{strings.Repeat("l", 1025)} }, []string{"spec.labels[0]"}},
		{"257 desired properties", func(d *v1alpha1.Device) { d.Spec.DeviceProperties = desiredMap(257, "1") }, []string{"spec.deviceProperties", "256"}},
		{"a desired value over 1 MiB", func(d *v1alpha1.Device) { d.Spec.DeviceProperties = desiredMap(1, strings.Repeat("9", 1<<20+1)) },
			[]string{"spec.deviceProperties.p000.desiredValue"}},
		{"a resource name of 257 characters", func(d *v1alpha1.Device) {
			name := strings.Repeat("r", 257)
			d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{name: {Name: name, DesiredValue: "1"}}
		}, []string{"spec.deviceProperties." + strings.Repeat("r", 257) + ".name"}},
		{"65 protocols", func(d *v1alpha1.Device) {
			d.Spec.Protocols = map[string]v1alpha1.ProtocolProperties{}
			for i := range 65 {
				d.Spec.Protocols[fmt.Sprintf("proto-%d", i)] = v1alpha1.ProtocolProperties{"Address": "x"}
			}
		}, []string{"spec.protocols", "64"}},
		{"a description of 64 KiB and one byte", func(d *v1alpha1.Device) { d.Spec.Description = strings.Repeat("d", 65537) }, []string{"spec.description"}},
		{"257 auto events", func(d *v1alpha1.Device) {
			for range 257 {
				d.Spec.AutoEvents = append(d.Spec.AutoEvents, v1alpha1.AutoEvent{Interval: "1s", SourceName: "pins"})
			}
		}, []string{"spec.autoEvents", "256"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := managedDevice(p, fmt.Sprintf("huge-%d", i), simulator.DemoServiceName, simulator.ProfileGPIO)
			tc.change(d)
			ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
			defer cancel()
			err := p.c.Create(ctx, d)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not name %q: %s", w, truncateForLog(err.Error()))
				}
			}
		})
	}
}

// Objects the schema lets through but that are hostile all the same:
// unicode and control characters, names that are not path segments, maps
// at their limits, values that overflow the resource's type. Each one ends
// synced with EdgeX holding exactly what it says, or with a condition that
// says why not; the bridge keeps running and other devices keep syncing.
func TestHostileObjectsGetAnAnswerAndOthersKeepSyncing(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	w := recordWrites(t, p)
	prof := typedProfile(p, "typed")
	p.create(prof)
	waitFor(p, &v1alpha1.DeviceProfile{}, prof.Name, func(d *v1alpha1.DeviceProfile) error { return synced(d.Status.Synced, d.Status.Conditions) })

	hostile := hostileDevices()
	for _, h := range hostile {
		d := managedDevice(p, h.name, simulator.DemoServiceName, simulator.ProfileGPIO)
		h.change(d)
		p.create(d)
	}
	overflow := managedDevice(p, "overflowing-values", simulator.DemoServiceName, prof.Name)
	overflowing := map[string]struct{ value, reason string }{
		"i8":   {"128", v1alpha1.ReasonValueOutOfRange},
		"u8":   {"-1", v1alpha1.ReasonValueOutOfRange},
		"i64":  {"9223372036854775808", v1alpha1.ReasonValueOutOfRange},
		"f32":  {"1e39", v1alpha1.ReasonValueOutOfRange},
		"flag": {"yes", v1alpha1.ReasonInvalidValue},
		"arr":  {"[1, 200]", v1alpha1.ReasonValueOutOfRange},
		"u64":  {"18446744073709551616", v1alpha1.ReasonValueOutOfRange},
	}
	overflow.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{}
	for name, v := range overflowing {
		overflow.Spec.DeviceProperties[name] = v1alpha1.DesiredPropertyState{Name: name, DesiredValue: v.value}
	}
	p.create(overflow)

	for _, h := range hostile {
		waitFor(p, &v1alpha1.Device{}, h.name, func(d *v1alpha1.Device) error { return answered(p, d) })
		d := &v1alpha1.Device{}
		_ = p.get(d, h.name)
		c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
		t.Logf("%s: %s %s", h.name, c.Reason, truncateForLog(c.Message))
	}
	waitFor(p, &v1alpha1.Device{}, overflow.Name, func(d *v1alpha1.Device) error {
		for name, v := range overflowing {
			c := d.Status.DeviceProperties[name].LastCommand
			if c == nil || c.Result != v1alpha1.CommandBlocked || c.Reason != v.reason {
				return fmt.Errorf("%s=%s: last command %+v, want blocked for %s", name, v.value, c, v.reason)
			}
		}
		return nil
	})

	// The bridge still runs and still serves everyone else.
	if err := p.bridge.Ready(); err != nil {
		t.Fatalf("the bridge is not ready after the hostile objects: %v", err)
	}
	commandDevice(p, "ordinary", simulator.ProfileGPIO)
	setDesired(p, "ordinary", "pin_17", "true")
	waitProperty(p, "ordinary", "pin_17", "Bool", "true")
	for name := range overflowing {
		if n := len(w.to(overflow.Name, name)); n != 0 {
			t.Errorf("%d overflowing values of %s were sent to the device", n, name)
		}
	}
}

// Every hostile object the bridge accepted can be deleted again, from the
// cluster and from EdgeX: nothing is left stuck behind its finalizer.
//
// Found by this test (fixed): a managed device whose EdgeX
// name is ".." (or holds a NUL) is created in EdgeX, because the batch add
// carries names in the body, but can never be deleted: edgex's nameParam
// refuses the name in the DELETE path (KindInvalid), reconcileDelete treats
// that like any EdgeX failure, and the finalizer stays forever with
// Synced=False ValidationFailed "cannot be used in a URL path". Either the
// bridge refuses such names before creating anything (ValidationFailed at
// create), or deletion of an object EdgeX cannot address drops the
// finalizer; in both cases the object must not be stuck.
func TestHostileObjectsCanBeDeleted(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	hostile := hostileDevices()
	for _, h := range hostile {
		d := managedDevice(p, h.name, simulator.DemoServiceName, simulator.ProfileGPIO)
		h.change(d)
		p.create(d)
	}
	edgeNames := map[string]string{}
	for _, h := range hostile {
		waitFor(p, &v1alpha1.Device{}, h.name, func(d *v1alpha1.Device) error { return answered(p, d) })
		d := &v1alpha1.Device{}
		must(t, p.get(d, h.name))
		edgeNames[h.name] = v1alpha1.EdgeXName(d)
		p.delete(d)
	}
	testenv.Eventually(t, 20*time.Second, func(context.Context) error {
		var stuck []string
		for _, h := range hostile {
			d := &v1alpha1.Device{}
			if err := p.get(d, h.name); err == nil {
				c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
				stuck = append(stuck, fmt.Sprintf("%s (deleting since %v: %+v)", h.name, d.DeletionTimestamp, c))
			} else if _, ok := p.sim.Device(edgeNames[h.name]); ok {
				stuck = append(stuck, fmt.Sprintf("%s is gone but EdgeX still has %q", h.name, truncateForLog(edgeNames[h.name])))
			}
		}
		if len(stuck) > 0 {
			return fmt.Errorf("not deleted: %s", strings.Join(stuck, "; "))
		}
		return nil
	})
}

// EdgeX holds objects Kubernetes cannot: names with control characters or
// thousands of characters, more labels or a longer description than the
// schema allows. Those the schema refuses are not imported, and the rest of
// the edge still is.
func TestHostileEdgeObjectsDoNotStopImports(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	base := simulator.DemoDevices()[0]
	edge := []struct {
		name string
		// importable says the schema admits the import.
		importable bool
		change     func(d *dtos.Device)
	}{
		{"ctl\x01name\nwith newline", true, func(*dtos.Device) {}},
		{strings.Repeat("長", 3000), true, func(*dtos.Device) {}},
		{"too-many-labels", false, func(d *dtos.Device) { d.Labels = repeat("l", 2000) }},
		{"too-long-description", false, func(d *dtos.Device) { d.Description = strings.Repeat("d", 70000) }},
		{"unicode-description", true, func(d *dtos.Device) { d.Description = "\u202e\x00 😀" }},
	}
	for _, e := range edge {
		d := base
		d.Name, d.Id, d.AutoEvents = e.name, "", nil
		e.change(&d)
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatalf("add %q at the edge: %v", truncateForLog(e.name), err)
		}
	}
	later := base
	later.Name, later.Id, later.AutoEvents = "added-after-the-hostile-ones", "", nil
	if _, err := p.sim.AddDevice(later); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, later.Name), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list); err != nil {
			return err
		}
		have := map[string]*v1alpha1.Device{}
		for i := range list.Items {
			if list.Items[i].Namespace == p.ns {
				have[v1alpha1.EdgeXName(&list.Items[i])] = &list.Items[i]
			}
		}
		for _, e := range edge {
			d, ok := have[e.name]
			switch {
			case ok != e.importable:
				return fmt.Errorf("%q imported: %v, want %v", truncateForLog(e.name), ok, e.importable)
			case ok:
				if err := synced(d.Status.Synced, d.Status.Conditions); err != nil {
					return fmt.Errorf("%q: %w", truncateForLog(e.name), err)
				}
			}
		}
		return nil
	})
	if err := p.bridge.Ready(); err != nil {
		t.Fatal(err)
	}
}

// hostileDevice is a managed device the schema admits though its content
// is hostile.
type hostileDevice struct {
	name   string
	change func(d *v1alpha1.Device)
}

func hostileDevices() []hostileDevice {
	const controls = "Kamera \u202eSüd\x00\x07\x1b[31m\r\n\t😀 名前"
	return []hostileDevice{
		{"unicode-and-controls", func(d *v1alpha1.Device) {
			d.Spec.Description = controls
			d.Spec.Labels = []string{"日本語", "tab\there", "\x00nul", "\u202eright-to-left"}
			d.Spec.Protocols = map[string]v1alpha1.ProtocolProperties{"other": {"Address": "line1\nline2", "Port": "\u202e502", "\x01": "\x02"}}
			d.Spec.Location = controls
		}},
		{"edgex-name-dot-dot", func(d *v1alpha1.Device) { d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: ".."} }},
		{"edgex-name-path", func(d *v1alpha1.Device) {
			d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: "../../api/v3/ping"} // checkpaths:not-a-path (a hostile EdgeX name)
		}},
		{"edgex-name-encoded", func(d *v1alpha1.Device) { d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: "a%2Fb?c#d"} }},
		{"edgex-name-controls", func(d *v1alpha1.Device) {
			d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: "nul\x00and\nnewline"}
		}},
		{"edgex-name-long", func(d *v1alpha1.Device) {
			d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: strings.Repeat("名", 5000)}
		}},
		{"maps-at-their-limits", func(d *v1alpha1.Device) {
			d.Spec.Labels = repeat(strings.Repeat("x", 200), 1024)
			d.Spec.DeviceProperties = desiredMap(256, "true")
		}},
	}
}

// answered checks that a device ended either synced with EdgeX holding
// exactly its description, labels and protocols, or with a Synced
// condition saying why not.
func answered(p *pool, d *v1alpha1.Device) error {
	c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
	switch {
	case c == nil:
		return fmt.Errorf("no Synced condition yet")
	case c.Status == metav1.ConditionFalse && c.Reason != v1alpha1.ReasonCreating && c.Message != "":
		return nil // refused, and it says why
	case c.Status != metav1.ConditionTrue:
		return fmt.Errorf("condition %+v", c)
	}
	edge, ok := p.sim.Device(v1alpha1.EdgeXName(d))
	if !ok {
		return fmt.Errorf("synced, but EdgeX has no device %q", truncateForLog(v1alpha1.EdgeXName(d)))
	}
	want, err := convert.DeviceToEdgeX(d)
	if err != nil {
		return err
	}
	if edge.Description != want.Description || !slices.Equal(edge.Labels, want.Labels) || fmt.Sprint(edge.Protocols) != fmt.Sprint(want.Protocols) {
		return fmt.Errorf("synced, but EdgeX holds description %q labels %d protocols %v",
			truncateForLog(edge.Description), len(edge.Labels), edge.Protocols)
	}
	return nil
}

// typedProfile is a managed profile with a writable resource of each kind
// of number, a Bool and an array.
func typedProfile(p *pool, name string) *v1alpha1.DeviceProfile {
	prof := managedProfile(p, name)
	prof.Spec.DeviceCommands = nil
	prof.Spec.DeviceResources = nil
	for _, r := range []struct{ name, valueType string }{
		{"i8", "Int8"}, {"u8", "Uint8"}, {"i64", "Int64"}, {"u64", "Uint64"}, {"f32", "Float32"}, {"flag", "Bool"}, {"arr", "Int8Array"},
	} {
		prof.Spec.DeviceResources = append(prof.Spec.DeviceResources, v1alpha1.DeviceResource{
			Name: r.name, Properties: v1alpha1.ResourceProperties{ValueType: r.valueType, ReadWrite: "RW"},
		})
	}
	return prof
}

func repeat(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// desiredMap wants value for n resources named p000, p001...
func desiredMap(n int, value string) map[string]v1alpha1.DesiredPropertyState {
	m := map[string]v1alpha1.DesiredPropertyState{}
	for i := range n {
		name := fmt.Sprintf("p%03d", i)
		m[name] = v1alpha1.DesiredPropertyState{Name: name, DesiredValue: value}
	}
	return m
}

func truncateForLog(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", s[:300], len(s))
	}
	return s
}
