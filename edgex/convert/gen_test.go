package convert

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// gen makes random objects for the round-trip properties. It produces what
// the EdgeX REST client can hand over (numbers inside free-form values as
// json.Number, unicode text, nil and empty collections) and specs in the
// form a round trip can reproduce (numbers as EdgeX's JSON writes them,
// typed values whose JSON text equals their string field).
type gen struct{ r *rand.Rand }

func newGen(t testing.TB, seed uint64) gen {
	t.Logf("generator seed %d", seed)
	return gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var sampleText = []string{
	"", "a", "temperature", "Cam_01", "cam-01", "CAM.01", "~x", "温度", "Ünïcödé ✓", "with space",
	`quote " and \ backslash`, "<tag>&amp;", "line\nbreak", "emoji 🙂", "0", "true", "null", "[1,2]",
}

func (g gen) text() string {
	if g.r.IntN(4) == 0 {
		var b strings.Builder
		alphabet := []rune("aZ09_-.~ é中🙂\"\\/")
		for n := g.r.IntN(12); n > 0; n-- {
			b.WriteRune(alphabet[g.r.IntN(len(alphabet))])
		}
		return b.String()
	}
	return sampleText[g.r.IntN(len(sampleText))]
}

func (g gen) nonEmptyText() string {
	if s := g.text(); s != "" {
		return s
	}
	return "x"
}

// oddNumbers are number texts EdgeX itself would not write (it holds
// free-form numbers as float64); only string fields can keep them exactly.
var oddNumbers = []string{"1.0", "-0", "1E-7", "-1.5e300", "12345678901234567890", "0.10", "1e2"}

// number is a number as EdgeX writes it: encoding/json of a float64.
func (g gen) number() json.Number {
	var f float64
	switch g.r.IntN(4) {
	case 0:
		f = float64(g.r.Int64N(2_000_000) - 1_000_000)
	case 1:
		f = []float64{0, 1, 300, -20, 0.1, 66.66, 1e21, 1e-7, -1.5e300, 1.2345678901234567e19, 1 << 60, 5e-324}[g.r.IntN(12)]
	default:
		for f = math.NaN(); math.IsNaN(f) || math.IsInf(f, 0); {
			f = math.Float64frombits(g.r.Uint64())
		}
	}
	if f == 0 {
		f = 0 // never -0, which the API server stores as 0
	}
	b, _ := json.Marshal(f)
	return json.Number(b)
}

// jsonValue is any JSON value in the shapes a UseNumber decoder produces,
// with numbers as EdgeX writes them.
func (g gen) jsonValue(depth int) any { return g.anyJSON(depth, false) }

// textedJSON may also hold number texts EdgeX would not write.
func (g gen) textedJSON(depth int) any { return g.anyJSON(depth, true) }

func (g gen) anyJSON(depth int, odd bool) any {
	choices := 4
	if depth > 0 {
		choices = 6
	}
	switch g.r.IntN(choices) {
	case 0:
		return nil
	case 1:
		return g.text()
	case 2:
		if odd && g.r.IntN(2) == 0 {
			return json.Number(oddNumbers[g.r.IntN(len(oddNumbers))])
		}
		return g.number()
	case 3:
		return g.r.IntN(2) == 0
	case 4:
		m := map[string]any{}
		for n := g.r.IntN(4); n > 0; n-- {
			m[g.text()] = g.anyJSON(depth-1, odd)
		}
		return m
	default:
		a := make([]any, g.r.IntN(4))
		for i := range a {
			a[i] = g.anyJSON(depth-1, odd)
		}
		return a
	}
}

func (g gen) nonStringJSON(depth int) any {
	for {
		if v := g.jsonValue(depth); v != nil {
			if _, isString := v.(string); !isString {
				return v
			}
		}
	}
}

// anyMap is nil, empty or filled, as EdgeX may hold it.
func (g gen) anyMap() map[string]any {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]any{}
	}
	m := map[string]any{}
	for n := 1 + g.r.IntN(4); n > 0; n-- {
		m[g.text()] = g.jsonValue(2)
	}
	return m
}

// texted puts odd number texts into a map whose values have string fields.
func (g gen) texted(m map[string]any) map[string]any {
	for k := range m {
		if g.r.IntN(2) == 0 {
			m[k] = g.textedJSON(2)
		}
	}
	return m
}

func (g gen) labels() []string {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	l := make([]string, 1+g.r.IntN(3))
	for i := range l {
		l[i] = g.text()
	}
	return l
}

func (g gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

func (g gen) device() dtos.Device {
	d := dtos.Device{
		DBTimestamp:    dtos.DBTimestamp{Created: g.r.Int64(), Modified: g.r.Int64()},
		Id:             "e6a1d561-1682-4a83-a4df-086a5e5657fd",
		Name:           g.nonEmptyText(),
		Description:    g.text(),
		AdminState:     g.pick("LOCKED", "UNLOCKED"),
		OperatingState: g.pick("UP", "DOWN", "UNKNOWN"),
		Labels:         g.labels(),
		Location:       g.textedJSON(3),
		ServiceName:    g.nonEmptyText(),
		ProfileName:    g.nonEmptyText(),
		Protocols:      map[string]dtos.ProtocolProperties{},
		Tags:           g.anyMap(),
		Properties:     g.anyMap(),
	}
	if g.r.IntN(3) > 0 {
		d.AutoEvents = make([]dtos.AutoEvent, g.r.IntN(3))
		for i := range d.AutoEvents {
			d.AutoEvents[i] = dtos.AutoEvent{Interval: g.pick("10s", "1m", "250ms"), OnChange: g.r.IntN(2) == 0, SourceName: g.text()}
		}
	}
	for n := 1 + g.r.IntN(3); n > 0; n-- {
		props := dtos.ProtocolProperties{}
		for k := g.r.IntN(4); k > 0; k-- {
			props[g.text()] = g.textedJSON(2)
		}
		d.Protocols[g.pick("other", "modbus-tcp", "mqtt", g.text())] = props
	}
	return d
}

func (g gen) floatPtr() *float64 {
	if g.r.IntN(3) == 0 {
		return nil
	}
	var f float64
	switch g.r.IntN(4) {
	case 0:
		f = float64(g.r.IntN(100_001) - 50_000)
	case 1:
		f = []float64{0.1, -20, 60, 40001, 1e21, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1)}[g.r.IntN(9)]
	default:
		for f = math.NaN(); math.IsNaN(f) || math.IsInf(f, 0); {
			f = math.Float64frombits(g.r.Uint64())
		}
	}
	return &f
}

func (g gen) resourceTags() map[string]any {
	m := g.anyMap()
	if g.r.IntN(2) == 0 {
		if m == nil {
			m = map[string]any{}
		}
		// The v1 tag, or something else under its key.
		m[resourceTagKey] = []any{g.text(), "", g.number(), g.nonEmptyText()}[g.r.IntN(4)]
	}
	return m
}

func (g gen) profile() dtos.DeviceProfile {
	p := dtos.DeviceProfile{
		DBTimestamp: dtos.DBTimestamp{Created: g.r.Int64(), Modified: g.r.Int64()},
		DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{
			Id:           "690e060d-4264-49f3-9902-f4beb4f7b33e",
			Name:         g.nonEmptyText(),
			Manufacturer: g.text(),
			Description:  g.text(),
			Model:        g.text(),
			Labels:       g.labels(),
		},
	}
	for n := g.r.IntN(5); n > 0; n-- {
		var mask *uint64
		if g.r.IntN(3) == 0 {
			m := []uint64{0, 0xFF00, math.MaxUint64, g.r.Uint64()}[g.r.IntN(4)]
			mask = &m
		}
		var shift *int64
		if g.r.IntN(3) == 0 {
			s := []int64{0, -8, 16, math.MinInt64, g.r.Int64()}[g.r.IntN(5)]
			shift = &s
		}
		p.DeviceResources = append(p.DeviceResources, dtos.DeviceResource{
			Description: g.text(),
			Name:        g.nonEmptyText(),
			IsHidden:    g.r.IntN(2) == 0,
			Properties: dtos.ResourceProperties{
				ValueType: g.pick("Bool", "Int32", "Float32", "Float64Array", "Binary", "Object", "String"),
				ReadWrite: g.pick("R", "W", "RW", "WR"),
				Units:     g.text(), Minimum: g.floatPtr(), Maximum: g.floatPtr(), DefaultValue: g.text(),
				Mask: mask, Shift: shift, Scale: g.floatPtr(), Offset: g.floatPtr(), Base: g.floatPtr(),
				Assertion: g.text(), MediaType: g.pick("", "image/jpeg"), Optional: g.anyMap(),
			},
			Attributes: g.texted(g.anyMap()),
			Tags:       g.resourceTags(),
		})
	}
	for n := g.r.IntN(4); n > 0; n-- {
		c := dtos.DeviceCommand{Name: g.nonEmptyText(), IsHidden: g.r.IntN(2) == 0, ReadWrite: g.pick("R", "W", "RW"), Tags: g.anyMap()}
		for k := 1 + g.r.IntN(3); k > 0; k-- {
			op := dtos.ResourceOperation{DeviceResource: g.nonEmptyText(), DefaultValue: g.text()}
			if g.r.IntN(2) == 0 {
				op.Mappings = map[string]string{g.text(): g.text()}
			}
			c.ResourceOperations = append(c.ResourceOperations, op)
		}
		p.DeviceCommands = append(p.DeviceCommands, c)
	}
	return p
}

func (g gen) service() dtos.DeviceService {
	return dtos.DeviceService{
		DBTimestamp: dtos.DBTimestamp{Created: g.r.Int64(), Modified: g.r.Int64()},
		Id:          "713864a1-217f-4eb9-a997-fbbf660c1a6d",
		Name:        g.nonEmptyText(),
		Description: g.text(),
		Labels:      g.labels(),
		BaseAddress: g.pick("http://127.0.0.1:59900", "https://ds.example:443/x", g.text()),
		AdminState:  g.pick("LOCKED", "UNLOCKED"),
	}
}

// canonicalJSON is the text a round trip shows for a value: compact JSON
// with sorted keys and HTML left alone. It is the test's own encoder, so
// the tests do not take the package's word for it.
func canonicalJSON(t testing.TB, v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// storedJSON is a value as the API server returns it in a JSON field:
// encoding/json's defaults (HTML escaped). The generator's numbers are
// already in the form the API server keeps.
func storedJSON(t testing.TB, v any) []byte {
	if v == nil {
		return nil // apiextensionsv1.JSON reads null as an empty Raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	return b
}

func (g gen) rawMap(t testing.TB) map[string]apiextensionsv1.JSON {
	if g.r.IntN(3) == 0 {
		return nil
	}
	m := map[string]apiextensionsv1.JSON{}
	for n := g.r.IntN(4); n > 0; n-- {
		m[g.text()] = apiextensionsv1.JSON{Raw: storedJSON(t, g.jsonValue(2))}
	}
	return m
}

// stringAndTyped is a free-form value as a spec holds it.
func (g gen) stringAndTyped(t testing.TB) (string, *apiextensionsv1.JSON) {
	if g.r.IntN(2) == 0 {
		return g.text(), nil
	}
	v := g.nonStringJSON(2)
	return canonicalJSON(t, v), &apiextensionsv1.JSON{Raw: storedJSON(t, v)}
}

// numberText is a number as EdgeX's JSON writes it.
func (g gen) numberText(t testing.TB) string {
	f := g.floatPtr()
	if f == nil {
		return ""
	}
	return canonicalJSON(t, *f)
}

func (g gen) deviceSpec(t testing.TB) v1alpha1.DeviceSpec {
	s := v1alpha1.DeviceSpec{
		Description:    g.text(),
		AdminState:     v1alpha1.AdminState(g.pick("LOCKED", "UNLOCKED")),
		OperatingState: v1alpha1.OperatingState(g.pick("UP", "DOWN", "UNKNOWN")),
		Protocols:      map[string]v1alpha1.ProtocolProperties{},
		Service:        g.nonEmptyText(),
		Profile:        g.nonEmptyText(),
		Tags:           g.rawMap(t),
		Properties:     g.rawMap(t),
	}
	if l := g.labels(); len(l) > 0 {
		s.Labels = l
	}
	switch g.r.IntN(3) {
	case 0:
		s.Location, s.TypedLocation = g.stringAndTyped(t)
	case 1:
		s.Location, s.TypedLocation = "", &apiextensionsv1.JSON{Raw: []byte(`""`)}
	}
	for n := 1 + g.r.IntN(3); n > 0; n-- {
		name := g.pick("other", "modbus-tcp", g.text())
		delete(s.TypedProtocols, name)
		props := v1alpha1.ProtocolProperties{}
		for k := g.r.IntN(4); k > 0; k-- {
			key := g.text()
			text, typed := g.stringAndTyped(t)
			props[key] = text
			if typed != nil {
				if s.TypedProtocols == nil {
					s.TypedProtocols = map[string]map[string]apiextensionsv1.JSON{}
				}
				if s.TypedProtocols[name] == nil {
					s.TypedProtocols[name] = map[string]apiextensionsv1.JSON{}
				}
				s.TypedProtocols[name][key] = *typed
			} else {
				delete(s.TypedProtocols[name], key)
			}
		}
		s.Protocols[name] = props
		if len(s.TypedProtocols[name]) == 0 {
			delete(s.TypedProtocols, name)
		}
	}
	if g.r.IntN(2) == 0 {
		s.AutoEvents = []v1alpha1.AutoEvent{{Interval: "10s", OnChange: g.r.IntN(2) == 0, SourceName: g.text()}}
	}
	return s
}

func (g gen) profileSpec(t testing.TB) v1alpha1.DeviceProfileSpec {
	s := v1alpha1.DeviceProfileSpec{Description: g.text(), Manufacturer: g.text(), Model: g.text()}
	if l := g.labels(); len(l) > 0 {
		s.Labels = l
	}
	for n := g.r.IntN(4); n > 0; n-- {
		r := v1alpha1.DeviceResource{
			Description: g.text(), Name: g.nonEmptyText(), IsHidden: g.r.IntN(2) == 0,
			Properties: v1alpha1.ResourceProperties{
				ReadWrite: g.pick("R", "RW"), Minimum: g.numberText(t), Maximum: g.numberText(t),
				DefaultValue: g.text(), Scale: g.numberText(t), Offset: g.numberText(t), Base: g.numberText(t),
				Assertion: g.text(), Units: g.text(), ValueType: g.pick("Int16", "Float64", "Uint8Array"),
				Optional: g.rawMap(t),
			},
			Tags: g.rawMap(t),
		}
		delete(r.Tags, resourceTagKey)
		if g.r.IntN(2) == 0 {
			r.Tag = g.nonEmptyText()
		}
		if g.r.IntN(2) == 0 {
			r.Properties.Mask = strconv.FormatUint(g.r.Uint64(), 10)
			r.Properties.Shift = strconv.FormatInt(g.r.Int64(), 10)
		}
		if len(r.Tags) == 0 {
			r.Tags = nil
		}
		for k := g.r.IntN(3); k > 0; k-- {
			if r.Attributes == nil {
				r.Attributes = map[string]string{}
			}
			key := g.text()
			text, typed := g.stringAndTyped(t)
			r.Attributes[key] = text
			delete(r.TypedAttributes, key)
			if typed != nil {
				if r.TypedAttributes == nil {
					r.TypedAttributes = map[string]apiextensionsv1.JSON{}
				}
				r.TypedAttributes[key] = *typed
			}
		}
		s.DeviceResources = append(s.DeviceResources, r)
	}
	for n := g.r.IntN(3); n > 0; n-- {
		s.DeviceCommands = append(s.DeviceCommands, v1alpha1.DeviceCommand{
			Name: g.nonEmptyText(), IsHidden: g.r.IntN(2) == 0, ReadWrite: "R", Tags: g.rawMap(t),
			ResourceOperations: []v1alpha1.ResourceOperation{{DeviceResource: g.text(), DefaultValue: g.text(), Mappings: map[string]string{"1": "ON"}}},
		})
	}
	return s
}
