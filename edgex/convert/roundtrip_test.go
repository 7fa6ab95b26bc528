package convert

import (
	"encoding/json"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sjson "sigs.k8s.io/json"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// The round-trip properties use equality.Semantic, the comparison the
// controller uses to decide whether a mirrored spec changed: it holds an
// absent list or map equal to an empty one, which the CRD cannot tell apart
// either. Everything else must come back exactly, including json.Number
// text, unicode and the types of free-form values. Specs travel through a
// stand-in for the API server on the way, as they do in the bridge.

// throughAPIServer stores an object and reads it back as the API server and
// a typed client do: the server decodes custom resources with
// sigs.k8s.io/json (integers that fit as int64, other numbers as float64)
// and encodes them with encoding/json; the client decodes that.
func throughAPIServer[T any](t testing.TB, in T) (T, bool) {
	t.Helper()
	var out T
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encode %#v: %v", in, err)
	}
	var stored any
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(body, &stored); err != nil {
		return out, false // the API server refuses it (a number beyond float64)
	}
	served, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(served, &out); err != nil {
		t.Fatalf("decode %s: %v", served, err)
	}
	return out, true
}

// storedSpec is throughAPIServer for specs that must survive it unchanged:
// otherwise a mirror would rewrite the object on every resync.
func storedSpec[T any](t testing.TB, spec T) T {
	t.Helper()
	stored, ok := throughAPIServer(t, spec)
	if !ok {
		t.Fatalf("the API server would refuse %s", dump(spec))
	}
	if !equality.Semantic.DeepEqual(spec, stored) {
		t.Fatalf("the API server changes the spec\nsent %s\nread %s", dump(spec), dump(stored))
	}
	return stored
}

const roundTrips = 400

func named(edgexName string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: "k8s-name", Annotations: map[string]string{v1alpha1.EdgeXNameAnnotation: edgexName}}
}

func withoutDBFields[T any](v T, clear func(*T)) T {
	clear(&v)
	return v
}

func clearDevice(d *dtos.Device)         { d.Id, d.Created, d.Modified = "", 0, 0 }
func clearProfile(p *dtos.DeviceProfile) { p.Id, p.Created, p.Modified = "", 0, 0 }
func clearService(s *dtos.DeviceService) { s.Id, s.Created, s.Modified = "", 0, 0 }

func dump(v any) string {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestDeviceRoundTripFromEdgeX(t *testing.T) {
	g := newGen(t, 1)
	for i := 0; i < roundTrips; i++ {
		original := g.device()
		spec := storedSpec(t, DeviceFromEdgeX(original))
		back, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named(original.Name), Spec: spec})
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, dump(original))
		}
		want := withoutDBFields(original, clearDevice)
		if !equality.Semantic.DeepEqual(want, back) {
			t.Fatalf("case %d: EdgeX -> spec -> EdgeX changed the device\nwant %s\ngot  %s", i, dump(want), dump(back))
		}
		if _, changed := DeviceUpdate(back, original); changed {
			t.Fatalf("case %d: a round-tripped device still needs a patch", i)
		}
	}
}

func TestDeviceRoundTripFromSpec(t *testing.T) {
	g := newGen(t, 2)
	for i := 0; i < roundTrips; i++ {
		spec := storedSpec(t, g.deviceSpec(t))
		dto, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("dev"), Spec: spec})
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, dump(spec))
		}
		if back := DeviceFromEdgeX(dto); !equality.Semantic.DeepEqual(spec, back) {
			t.Fatalf("case %d: spec -> EdgeX -> spec changed\nwant %s\ngot  %s", i, dump(spec), dump(back))
		}
	}
}

func TestProfileRoundTripFromEdgeX(t *testing.T) {
	g := newGen(t, 3)
	for i := 0; i < roundTrips; i++ {
		original := g.profile()
		spec := storedSpec(t, ProfileFromEdgeX(original))
		back, err := ProfileToEdgeX(&v1alpha1.DeviceProfile{ObjectMeta: named(original.Name), Spec: spec})
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, dump(original))
		}
		want := withoutDBFields(original, clearProfile)
		if !equality.Semantic.DeepEqual(want, back) {
			t.Fatalf("case %d: EdgeX -> spec -> EdgeX changed the profile\nwant %s\ngot  %s", i, dump(want), dump(back))
		}
		if _, _, changed := ProfileUpdate(back, original); changed {
			t.Fatalf("case %d: a round-tripped profile still needs an update", i)
		}
	}
}

func TestProfileRoundTripFromSpec(t *testing.T) {
	g := newGen(t, 4)
	for i := 0; i < roundTrips; i++ {
		spec := storedSpec(t, g.profileSpec(t))
		dto, err := ProfileToEdgeX(&v1alpha1.DeviceProfile{ObjectMeta: named("profile"), Spec: spec})
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, dump(spec))
		}
		if back := ProfileFromEdgeX(dto); !equality.Semantic.DeepEqual(spec, back) {
			t.Fatalf("case %d: spec -> EdgeX -> spec changed\nwant %s\ngot  %s", i, dump(spec), dump(back))
		}
	}
}

func TestServiceRoundTrip(t *testing.T) {
	g := newGen(t, 5)
	for i := 0; i < roundTrips; i++ {
		original := g.service()
		spec := storedSpec(t, ServiceFromEdgeX(original))
		back, err := ServiceToEdgeX(&v1alpha1.DeviceService{ObjectMeta: named(original.Name), Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		if want := withoutDBFields(original, clearService); !equality.Semantic.DeepEqual(want, back) {
			t.Fatalf("case %d: EdgeX -> spec -> EdgeX changed the service\nwant %s\ngot  %s", i, dump(want), dump(back))
		}
		if again := ServiceFromEdgeX(back); !equality.Semantic.DeepEqual(spec, again) {
			t.Fatalf("case %d: spec -> EdgeX -> spec changed\nwant %s\ngot  %s", i, dump(spec), dump(again))
		}
		if _, changed := ServiceUpdate(back, original); changed {
			t.Fatalf("case %d: a round-tripped service still needs a patch", i)
		}
	}
}

// A float64 in a free-form value (a decoder without UseNumber, or a DTO
// built in Go) comes back as a json.Number with the same JSON text: what
// EdgeX receives is identical.
func TestFloat64ValuesKeepTheirJSON(t *testing.T) {
	original := dtos.Device{
		Name: "d", AdminState: "UNLOCKED", OperatingState: "UP", ServiceName: "s", ProfileName: "p",
		Location:  map[string]any{"lat": 52.52, "floor": float64(3)},
		Protocols: map[string]dtos.ProtocolProperties{"other": {"Port": float64(300), "Scale": 1e21}},
		Tags:      map[string]any{"weight": 0.1},
	}
	back, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d"), Spec: storedSpec(t, DeviceFromEdgeX(original))})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(back), dump(original); got != want {
		t.Errorf("wire form changed\nwant %s\ngot  %s", want, got)
	}
	if _, changed := DeviceUpdate(back, original); changed {
		t.Error("json.Number and float64 of the same value must not need a patch")
	}
}
