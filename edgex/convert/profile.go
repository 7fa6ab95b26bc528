package convert

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// resourceTagKey is where the v1 resource "tag" lives in EdgeX. EdgeX v3
// dropped the field but gave resources free-form tags, so the bridge keeps
// yurt-iot-dock's tag there under this key and lifts it back out; a spec
// that relies on tag keeps working against v3.
const resourceTagKey = "tag"

// ProfileToEdgeX renders a DeviceProfile as EdgeX should hold it, named
// v1alpha1.EdgeXName(p). It fails on text EdgeX cannot hold (a minimum that
// is not a number, a tag given both as tag and as tags.tag, a tag value that
// is not JSON).
func ProfileToEdgeX(p *v1alpha1.DeviceProfile) (dtos.DeviceProfile, error) {
	name := v1alpha1.EdgeXName(p)
	if name == "" {
		return dtos.DeviceProfile{}, errors.New("device profile has no name")
	}
	resources, err := resourcesToEdgeX(p.Spec.DeviceResources)
	if err != nil {
		return dtos.DeviceProfile{}, fmt.Errorf("device profile %q: %w", name, err)
	}
	commands, err := commandsToEdgeX(p.Spec.DeviceCommands)
	if err != nil {
		return dtos.DeviceProfile{}, fmt.Errorf("device profile %q: %w", name, err)
	}
	return dtos.DeviceProfile{
		DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{
			Name:         name,
			Manufacturer: p.Spec.Manufacturer,
			Description:  p.Spec.Description,
			Model:        p.Spec.Model,
			Labels:       slices.Clone(p.Spec.Labels),
		},
		DeviceResources: resources,
		DeviceCommands:  commands,
	}, nil
}

// ProfileFromEdgeX is the spec that mirrors an EdgeX profile. Managed and
// NodePool are left for the caller.
func ProfileFromEdgeX(dto dtos.DeviceProfile) v1alpha1.DeviceProfileSpec {
	return v1alpha1.DeviceProfileSpec{
		Description:     dto.Description,
		Manufacturer:    dto.Manufacturer,
		Model:           dto.Model,
		Labels:          cloneOrNil(dto.Labels),
		DeviceResources: resourcesFromEdgeX(dto.DeviceResources),
		DeviceCommands:  commandsFromEdgeX(dto.DeviceCommands),
	}
}

// ProfileUpdate says how to make EdgeX's profile (have) match want. When
// resources or commands differ the whole profile must be replaced (EdgeX's
// PUT); when only the basic info (description, manufacturer, model,
// labels) differs, basic is the PATCH carrying just those fields and the
// name EdgeX finds the profile by. changed is false when nothing differs.
func ProfileUpdate(want, have dtos.DeviceProfile) (basic *dtos.UpdateDeviceProfileBasicInfo, replace bool, changed bool) {
	if !sameResources(want.DeviceResources, have.DeviceResources) ||
		!sameCommands(want.DeviceCommands, have.DeviceCommands) {
		return nil, true, true
	}
	name := want.Name
	patch := dtos.UpdateDeviceProfileBasicInfo{Name: &name}
	d := differ{}
	patch.Description = d.str(want.Description, have.Description)
	patch.Manufacturer = d.str(want.Manufacturer, have.Manufacturer)
	patch.Model = d.str(want.Model, have.Model)
	patch.Labels = d.labels(want.Labels, have.Labels)
	if !d.changed {
		return nil, false, false
	}
	return &patch, false, true
}

// ResourcePropertiesToEdgeX converts a resource's properties, reading the
// CRD's number text into EdgeX's typed numbers.
func ResourcePropertiesToEdgeX(p v1alpha1.ResourceProperties) (dtos.ResourceProperties, error) {
	out := dtos.ResourceProperties{
		ValueType:    p.ValueType,
		ReadWrite:    p.ReadWrite,
		Units:        p.Units,
		DefaultValue: p.DefaultValue,
		Assertion:    p.Assertion,
		MediaType:    p.MediaType,
	}
	var errs []error
	floats := []struct {
		name string
		text string
		dst  **float64
	}{
		{"minimum", p.Minimum, &out.Minimum},
		{"maximum", p.Maximum, &out.Maximum},
		{"scale", p.Scale, &out.Scale},
		{"offset", p.Offset, &out.Offset},
		{"base", p.Base, &out.Base},
	}
	for _, f := range floats {
		v, err := parseFloatText(f.name, f.text)
		*f.dst = v
		errs = append(errs, err)
	}
	var err error
	out.Mask, err = parseMaskText(p.Mask)
	errs = append(errs, err)
	out.Shift, err = parseShiftText(p.Shift)
	errs = append(errs, err)
	out.Optional, err = jsonMapToEdgeX(p.Optional)
	if err != nil {
		errs = append(errs, fmt.Errorf("optional: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return dtos.ResourceProperties{}, err
	}
	return out, nil
}

// Resource returns an EdgeX profile's device resource of that name: what
// the profile says of a property a command sets. Its API form is
// v1alpha1.DeviceProfileSpec.Resource.
func Resource(p dtos.DeviceProfile, name string) (dtos.DeviceResource, bool) {
	i := slices.IndexFunc(p.DeviceResources, func(r dtos.DeviceResource) bool { return r.Name == name })
	if i < 0 {
		return dtos.DeviceResource{}, false
	}
	return p.DeviceResources[i], true
}

// ResourcePropertiesFromEdgeX converts EdgeX's resource properties into the
// CRD's, writing numbers as EdgeX's JSON shows them.
func ResourcePropertiesFromEdgeX(p dtos.ResourceProperties) v1alpha1.ResourceProperties {
	return v1alpha1.ResourceProperties{
		ReadWrite:    p.ReadWrite,
		Minimum:      formatFloatText(p.Minimum),
		Maximum:      formatFloatText(p.Maximum),
		DefaultValue: p.DefaultValue,
		Mask:         formatMaskText(p.Mask),
		Shift:        formatShiftText(p.Shift),
		Scale:        formatFloatText(p.Scale),
		Offset:       formatFloatText(p.Offset),
		Base:         formatFloatText(p.Base),
		Assertion:    p.Assertion,
		MediaType:    p.MediaType,
		Units:        p.Units,
		ValueType:    p.ValueType,
		Optional:     jsonMapFromEdgeX(p.Optional),
	}
}

func resourcesToEdgeX(in []v1alpha1.DeviceResource) ([]dtos.DeviceResource, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]dtos.DeviceResource, len(in))
	for i, r := range in {
		var err error
		if out[i], err = resourceToEdgeX(r); err != nil {
			return nil, fmt.Errorf("device resource %q: %w", r.Name, err)
		}
	}
	return out, nil
}

func resourceToEdgeX(r v1alpha1.DeviceResource) (dtos.DeviceResource, error) {
	props, err := ResourcePropertiesToEdgeX(r.Properties)
	if err != nil {
		return dtos.DeviceResource{}, err
	}
	tags, err := jsonMapToEdgeX(r.Tags)
	if err != nil {
		return dtos.DeviceResource{}, fmt.Errorf("tags: %w", err)
	}
	if tags, err = withResourceTag(tags, r.Tag); err != nil {
		return dtos.DeviceResource{}, err
	}
	return dtos.DeviceResource{
		Description: r.Description,
		Name:        r.Name,
		IsHidden:    r.IsHidden,
		Properties:  props,
		Attributes:  joinMap(r.Attributes, r.TypedAttributes),
		Tags:        tags,
	}, nil
}

func withResourceTag(tags map[string]any, tag string) (map[string]any, error) {
	if tag == "" {
		return tags, nil
	}
	if _, clash := tags[resourceTagKey]; clash {
		return nil, fmt.Errorf("tag %q is also given as tags.%s; keep one", tag, resourceTagKey)
	}
	if tags == nil {
		tags = map[string]any{}
	}
	tags[resourceTagKey] = tag
	return tags, nil
}

func resourcesFromEdgeX(in []dtos.DeviceResource) []v1alpha1.DeviceResource {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1alpha1.DeviceResource, len(in))
	for i, r := range in {
		out[i] = resourceFromEdgeX(r)
	}
	return out
}

func resourceFromEdgeX(r dtos.DeviceResource) v1alpha1.DeviceResource {
	tag, tags := liftResourceTag(r.Tags)
	attrs, typedAttrs := splitMap(r.Attributes)
	return v1alpha1.DeviceResource{
		Description:     r.Description,
		Name:            r.Name,
		Tag:             tag,
		IsHidden:        r.IsHidden,
		Properties:      ResourcePropertiesFromEdgeX(r.Properties),
		Attributes:      attrs,
		TypedAttributes: typedAttrs,
		Tags:            jsonMapFromEdgeX(tags),
	}
}

// liftResourceTag takes a non-empty string tag out of a resource's tags.
// Anything else under the key (a number, an empty string) stays in tags,
// where the CRD can hold it exactly.
func liftResourceTag(tags map[string]any) (string, map[string]any) {
	tag, ok := tags[resourceTagKey].(string)
	if !ok || tag == "" {
		return "", tags
	}
	rest := maps.Clone(tags)
	delete(rest, resourceTagKey)
	return tag, rest
}

func commandsToEdgeX(in []v1alpha1.DeviceCommand) ([]dtos.DeviceCommand, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]dtos.DeviceCommand, len(in))
	for i, c := range in {
		tags, err := jsonMapToEdgeX(c.Tags)
		if err != nil {
			return nil, fmt.Errorf("device command %q: tags: %w", c.Name, err)
		}
		out[i] = dtos.DeviceCommand{
			Name:               c.Name,
			IsHidden:           c.IsHidden,
			ReadWrite:          c.ReadWrite,
			ResourceOperations: operationsToEdgeX(c.ResourceOperations),
			Tags:               tags,
		}
	}
	return out, nil
}

func operationsToEdgeX(in []v1alpha1.ResourceOperation) []dtos.ResourceOperation {
	if in == nil {
		return nil
	}
	out := make([]dtos.ResourceOperation, len(in))
	for i, op := range in {
		out[i] = dtos.ResourceOperation{
			DeviceResource: op.DeviceResource,
			DefaultValue:   op.DefaultValue,
			Mappings:       maps.Clone(op.Mappings),
		}
	}
	return out
}

func commandsFromEdgeX(in []dtos.DeviceCommand) []v1alpha1.DeviceCommand {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1alpha1.DeviceCommand, len(in))
	for i, c := range in {
		out[i] = v1alpha1.DeviceCommand{
			Name:               c.Name,
			IsHidden:           c.IsHidden,
			ReadWrite:          c.ReadWrite,
			ResourceOperations: operationsFromEdgeX(c.ResourceOperations),
			Tags:               jsonMapFromEdgeX(c.Tags),
		}
	}
	return out
}

func operationsFromEdgeX(in []dtos.ResourceOperation) []v1alpha1.ResourceOperation {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1alpha1.ResourceOperation, len(in))
	for i, op := range in {
		out[i] = v1alpha1.ResourceOperation{
			DeviceResource: op.DeviceResource,
			Mappings:       cloneMapOrNil(op.Mappings),
			DefaultValue:   op.DefaultValue,
		}
	}
	return out
}

// sameResources compares resources as EdgeX sees them: numbers by value,
// and no difference between an absent and an empty map.
func sameResources(a, b []dtos.DeviceResource) bool {
	return slices.EqualFunc(a, b, func(x, y dtos.DeviceResource) bool {
		return x.Name == y.Name && x.Description == y.Description && x.IsHidden == y.IsHidden &&
			sameProperties(x.Properties, y.Properties) &&
			sameJSONMap(x.Attributes, y.Attributes) && sameJSONMap(x.Tags, y.Tags)
	})
}

func sameProperties(a, b dtos.ResourceProperties) bool {
	return a.ValueType == b.ValueType && a.ReadWrite == b.ReadWrite && a.Units == b.Units &&
		a.DefaultValue == b.DefaultValue && a.Assertion == b.Assertion && a.MediaType == b.MediaType &&
		sameFloatPtr(a.Minimum, b.Minimum) && sameFloatPtr(a.Maximum, b.Maximum) &&
		sameFloatPtr(a.Scale, b.Scale) && sameFloatPtr(a.Offset, b.Offset) && sameFloatPtr(a.Base, b.Base) &&
		samePtr(a.Mask, b.Mask) && samePtr(a.Shift, b.Shift) &&
		sameJSONMap(a.Optional, b.Optional)
}

func sameCommands(a, b []dtos.DeviceCommand) bool {
	return slices.EqualFunc(a, b, func(x, y dtos.DeviceCommand) bool {
		return x.Name == y.Name && x.IsHidden == y.IsHidden && x.ReadWrite == y.ReadWrite &&
			sameJSONMap(x.Tags, y.Tags) &&
			slices.EqualFunc(x.ResourceOperations, y.ResourceOperations, func(p, q dtos.ResourceOperation) bool {
				return p.DeviceResource == q.DeviceResource && p.DefaultValue == q.DefaultValue &&
					maps.Equal(p.Mappings, q.Mappings)
			})
	})
}

// cloneOrNil copies a slice; empty becomes nil, as the CRD cannot keep an
// empty list apart from an absent one.
func cloneOrNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneMapOrNil[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
