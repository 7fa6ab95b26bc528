package convert

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// DeviceToEdgeX renders a Device as EdgeX should hold it, named
// v1alpha1.EdgeXName(d).
//
// Empty states become UNLOCKED and UP: core-metadata refuses a device whose
// adminState or operatingState is not one of its values, and an empty spec
// field means "the usual", which is an unlocked device that is up.
// AutoEvents, Tags and Properties keep the difference between nil (the spec
// leaves them to EdgeX) and empty (the spec clears them); DeviceUpdate
// relies on it.
func DeviceToEdgeX(d *v1alpha1.Device) (dtos.Device, error) {
	name := v1alpha1.EdgeXName(d)
	if name == "" {
		return dtos.Device{}, errors.New("device has no name")
	}
	spec := &d.Spec
	tags, err := jsonMapToEdgeX(spec.Tags)
	if err != nil {
		return dtos.Device{}, fmt.Errorf("device %q: tags: %w", name, err)
	}
	props, err := jsonMapToEdgeX(spec.Properties)
	if err != nil {
		return dtos.Device{}, fmt.Errorf("device %q: properties: %w", name, err)
	}
	return dtos.Device{
		Name:           name,
		Description:    spec.Description,
		AdminState:     string(orDefault(spec.AdminState, v1alpha1.UnLocked)),
		OperatingState: string(orDefault(spec.OperatingState, v1alpha1.Up)),
		Labels:         slices.Clone(spec.Labels),
		Location:       locationToEdgeX(spec.Location, spec.TypedLocation),
		ServiceName:    spec.Service,
		ProfileName:    spec.Profile,
		AutoEvents:     autoEventsToEdgeX(spec.AutoEvents),
		Protocols:      protocolsToEdgeX(spec.Protocols, spec.TypedProtocols),
		Tags:           tags,
		Properties:     props,
	}, nil
}

// DeviceFromEdgeX is the spec that mirrors an EdgeX device. Managed,
// NodePool and DeviceProperties (the owner's intent, not EdgeX metadata)
// are left for the caller.
func DeviceFromEdgeX(dto dtos.Device) v1alpha1.DeviceSpec {
	protocols, typedProtocols := protocolsFromEdgeX(dto.Protocols)
	location, typedLocation := locationFromEdgeX(dto.Location)
	return v1alpha1.DeviceSpec{
		Description:    dto.Description,
		AdminState:     v1alpha1.AdminState(dto.AdminState),
		OperatingState: v1alpha1.OperatingState(dto.OperatingState),
		Protocols:      protocols,
		TypedProtocols: typedProtocols,
		Labels:         cloneOrNil(dto.Labels),
		Location:       location,
		TypedLocation:  typedLocation,
		Service:        dto.ServiceName,
		Profile:        dto.ProfileName,
		AutoEvents:     autoEventsFromEdgeX(dto.AutoEvents),
		Tags:           jsonMapFromEdgeX(dto.Tags),
		Properties:     jsonMapFromEdgeX(dto.Properties),
	}
}

// DeviceUpdate is the PATCH that makes EdgeX's device (have) match want,
// carrying only the fields that differ, plus the name EdgeX finds the
// device by. What want leaves unmanaged is never patched: nil AutoEvents,
// Tags or Properties, and a nil Location. Empty lists and maps are sent as
// empty (not null), because EdgeX ignores a null field in a PATCH and
// clears one that is empty.
//
// OperatingState is compared like any other field. The device service
// changes it at run time (DOWN when the device stops answering), so a
// caller that only sends the spec's value when the spec changed puts
// have's value into want otherwise.
func DeviceUpdate(want, have dtos.Device) (patch dtos.UpdateDevice, changed bool) {
	name := want.Name
	patch.Name = &name
	d := differ{}
	patch.Description = d.str(want.Description, have.Description)
	patch.AdminState = d.str(want.AdminState, have.AdminState)
	patch.OperatingState = d.str(want.OperatingState, have.OperatingState)
	patch.ServiceName = d.str(want.ServiceName, have.ServiceName)
	patch.ProfileName = d.str(want.ProfileName, have.ProfileName)
	patch.Labels = d.labels(want.Labels, have.Labels)
	if want.Location != nil && !sameJSON(want.Location, have.Location) {
		patch.Location, d.changed = want.Location, true
	}
	if want.AutoEvents != nil && !slices.Equal(want.AutoEvents, have.AutoEvents) {
		patch.AutoEvents, d.changed = slices.Clone(want.AutoEvents), true
	}
	// EdgeX refuses a device without protocols, so an empty want cannot
	// mean "clear them".
	if len(want.Protocols) > 0 && !sameProtocols(want.Protocols, have.Protocols) {
		patch.Protocols, d.changed = maps.Clone(want.Protocols), true
	}
	patch.Tags = d.jsonMap(want.Tags, have.Tags)
	patch.Properties = d.jsonMap(want.Properties, have.Properties)
	return patch, d.changed
}

// differ builds a PATCH: each method returns the value to send, or nil
// when want and have agree, and remembers whether anything differed.
type differ struct{ changed bool }

func (d *differ) str(want, have string) *string {
	if want == have {
		return nil
	}
	d.changed = true
	return &want
}

// labels are always managed: a spec without labels clears EdgeX's.
func (d *differ) labels(want, have []string) []string {
	if slices.Equal(want, have) {
		return nil
	}
	d.changed = true
	return append([]string{}, want...)
}

// jsonMap handles the maps a nil want leaves unmanaged.
func (d *differ) jsonMap(want, have map[string]any) map[string]any {
	if want == nil || sameJSONMap(want, have) {
		return nil
	}
	d.changed = true
	return maps.Clone(want)
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

func autoEventsToEdgeX(in []v1alpha1.AutoEvent) []dtos.AutoEvent {
	if in == nil {
		return nil
	}
	out := make([]dtos.AutoEvent, len(in))
	for i, a := range in {
		out[i] = dtos.AutoEvent{Interval: a.Interval, OnChange: a.OnChange, SourceName: a.SourceName}
	}
	return out
}

func autoEventsFromEdgeX(in []dtos.AutoEvent) []v1alpha1.AutoEvent {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1alpha1.AutoEvent, len(in))
	for i, a := range in {
		out[i] = v1alpha1.AutoEvent{Interval: a.Interval, OnChange: a.OnChange, SourceName: a.SourceName}
	}
	return out
}

func protocolsToEdgeX(protocols map[string]v1alpha1.ProtocolProperties,
	typed map[string]map[string]apiextensionsv1.JSON) map[string]dtos.ProtocolProperties {
	if protocols == nil {
		return nil
	}
	out := make(map[string]dtos.ProtocolProperties, len(protocols))
	for name, props := range protocols {
		joined := joinMap(props, typed[name])
		if joined == nil {
			joined = map[string]any{}
		}
		out[name] = joined
	}
	return out
}

func protocolsFromEdgeX(in map[string]dtos.ProtocolProperties) (map[string]v1alpha1.ProtocolProperties,
	map[string]map[string]apiextensionsv1.JSON) {
	if len(in) == 0 {
		return nil, nil
	}
	protocols := make(map[string]v1alpha1.ProtocolProperties, len(in))
	var typed map[string]map[string]apiextensionsv1.JSON
	for name, props := range in {
		strs, t := splitMap(props)
		if strs == nil {
			// A protocol with no properties still names the protocol.
			strs = map[string]string{}
		}
		protocols[name] = strs
		if t != nil {
			if typed == nil {
				typed = map[string]map[string]apiextensionsv1.JSON{}
			}
			typed[name] = t
		}
	}
	return protocols, typed
}

func sameProtocols(a, b map[string]dtos.ProtocolProperties) bool {
	return maps.EqualFunc(a, b, func(x, y dtos.ProtocolProperties) bool {
		return sameJSONMap(x, y)
	})
}

// locationToEdgeX is the EdgeX location for the spec's location text and
// typed copy. An empty text alone means "no location"; an empty string
// location comes back from EdgeX with a typed copy "" to tell it apart.
func locationToEdgeX(text string, typed *apiextensionsv1.JSON) any {
	if text == "" && typed == nil {
		return nil
	}
	return joinValue(text, typed)
}

// locationFromEdgeX shows an EdgeX location of any JSON shape.
func locationFromEdgeX(loc any) (string, *apiextensionsv1.JSON) {
	switch v := loc.(type) {
	case nil:
		return "", nil
	case string:
		if v == "" {
			return "", &apiextensionsv1.JSON{Raw: []byte(`""`)}
		}
		return v, nil
	default:
		return splitValue(v)
	}
}
