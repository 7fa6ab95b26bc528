package devicecontroller

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// lastAppliedAnnotation is kubectl's copy of the last applied manifest: a
// second copy of the spec that the bridge never reads.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// compactForCache is the transform of every object the bridge's caches
// hold. A decoded object carries fresh copies of strings that are the same
// in thousands of objects (the namespace, label and annotation keys,
// profile, service and resource names, value types, condition reasons),
// and fields the bridge never reads; at 10,000 devices these were a good
// part of the informer's memory. The transform keeps one copy of the
// repeated strings and drops:
//   - managedFields (the bridge's writes are merge patches, and an object
//     written without managedFields keeps the stored ones), but for a mark
//     on those the bridge may empty (managedfields.go);
//   - kubectl's last-applied-configuration annotation;
//   - with a DeviceFields store, Devices' protocols and the reported values
//     of Devices without desired values, which it moves there.
//
// Nothing dropped may ever be written back: every write of the bridge is a
// merge patch computed between two copies of the cached object, so a field
// absent from both is absent from the patch and the API server keeps it
// (TestCacheDropsWhatTheBridgeNeverReads).
func compactForCache(in any) (any, error) {
	return compactAndTake(nil)(in)
}

// compactAndTake is compactForCache that also moves Devices' protocols and
// reported values into fields (see DeviceFields), when fields is set.
func compactAndTake(fields *DeviceFields) toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, ok := in.(client.Object)
		if !ok {
			return in, nil
		}
		compact(obj, fields)
		return obj, nil
	}
}

func compact(obj client.Object, fields *DeviceFields) {
	obj.SetManagedFields(markPrunable(obj.GetManagedFields()))
	compactMeta(obj)
	switch o := obj.(type) {
	case *v1alpha1.Device:
		if fields != nil {
			fields.take(o)
		}
		compactDevice(o)
	case *v1alpha1.DeviceService:
		compactService(o)
	case *v1alpha1.DeviceProfile:
		compactProfile(o)
	}
}

func compactMeta(obj client.Object) {
	obj.SetNamespace(cacheStrings.intern(obj.GetNamespace()))
	if ann := obj.GetAnnotations(); ann != nil {
		delete(ann, lastAppliedAnnotation)
		obj.SetAnnotations(internMap(ann, false))
	}
	edgexName := obj.GetAnnotations()[v1alpha1.EdgeXNameAnnotation]
	if l := obj.GetLabels(); l != nil {
		out := make(map[string]string, len(l))
		for k, v := range l {
			// The dock's name label repeats the EdgeX name annotation.
			if v == edgexName {
				v = edgexName
			} else {
				v = cacheStrings.intern(v)
			}
			out[cacheStrings.intern(k)] = v
		}
		obj.SetLabels(out)
	}
	if f := obj.GetFinalizers(); f != nil {
		internSlice(f)
	}
}

func compactDevice(d *v1alpha1.Device) {
	s := &d.Spec
	s.Description = cacheStrings.intern(s.Description)
	s.AdminState = v1alpha1.AdminState(cacheStrings.intern(string(s.AdminState)))
	s.OperatingState = v1alpha1.OperatingState(cacheStrings.intern(string(s.OperatingState)))
	s.Service, s.Profile, s.NodePool = cacheStrings.intern(s.Service), cacheStrings.intern(s.Profile), cacheStrings.intern(s.NodePool)
	internSlice(s.Labels)
	if s.Protocols != nil {
		protocols := make(map[string]v1alpha1.ProtocolProperties, len(s.Protocols))
		for name, props := range s.Protocols {
			// Only the keys: values are mostly one device's own (its
			// address, its port), and interning 10,000 of them filled the
			// interner (3.6 MB) for nothing.
			protocols[cacheStrings.intern(name)] = internMap(props, false)
		}
		s.Protocols = protocols
	}
	for i := range s.AutoEvents {
		e := &s.AutoEvents[i]
		e.Interval, e.SourceName = cacheStrings.intern(e.Interval), cacheStrings.intern(e.SourceName)
	}
	if s.DeviceProperties != nil {
		desired := make(map[string]v1alpha1.DesiredPropertyState, len(s.DeviceProperties))
		for name, p := range s.DeviceProperties {
			name = cacheStrings.intern(name)
			if p.Name == name {
				p.Name = name
			}
			desired[name] = p
		}
		s.DeviceProperties = desired
	}

	st := &d.Status
	st.AdminState = v1alpha1.AdminState(cacheStrings.intern(string(st.AdminState)))
	st.OperatingState = v1alpha1.OperatingState(cacheStrings.intern(string(st.OperatingState)))
	if st.DeviceProperties != nil {
		actual := make(map[string]v1alpha1.ActualPropertyState, len(st.DeviceProperties))
		for name, p := range st.DeviceProperties {
			name = cacheStrings.intern(name)
			if p.Name == name {
				p.Name = name
			}
			p.ValueType, p.Units, p.MediaType = cacheStrings.intern(p.ValueType), cacheStrings.intern(p.Units), cacheStrings.intern(p.MediaType)
			// The command URLs are the same for every reading of a
			// property: keep one copy, as the GET and PUT URLs usually are.
			if p.PutURL == p.GetURL {
				p.PutURL = p.GetURL
			}
			if c := p.LastCommand; c != nil {
				c.Result = v1alpha1.CommandResult(cacheStrings.intern(string(c.Result)))
				c.Reason = cacheStrings.intern(c.Reason)
			}
			actual[name] = p
		}
		st.DeviceProperties = actual
	}
	internConditions(st.Conditions)
}

func compactService(s *v1alpha1.DeviceService) {
	s.Spec.NodePool = cacheStrings.intern(s.Spec.NodePool)
	s.Spec.AdminState = v1alpha1.AdminState(cacheStrings.intern(string(s.Spec.AdminState)))
	s.Status.AdminState = v1alpha1.AdminState(cacheStrings.intern(string(s.Status.AdminState)))
	internConditions(s.Status.Conditions)
}

func compactProfile(p *v1alpha1.DeviceProfile) {
	p.Spec.NodePool = cacheStrings.intern(p.Spec.NodePool)
	internConditions(p.Status.Conditions)
}

func internConditions(cs []v1alpha1.Condition) {
	for i := range cs {
		c := &cs[i]
		c.Type, c.Reason, c.Message = cacheStrings.intern(c.Type), cacheStrings.intern(c.Reason), cacheStrings.intern(c.Message)
		c.Status = metav1.ConditionStatus(cacheStrings.intern(string(c.Status)))
	}
}

// internMap returns m with its keys interned, and its values too when
// values is set.
func internMap(m map[string]string, values bool) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = cacheStrings.intern(v)
		}
		out[cacheStrings.intern(k)] = v
	}
	return out
}

func internSlice(s []string) {
	for i := range s {
		s[i] = cacheStrings.intern(s[i])
	}
}

// cacheStrings holds the one copy of each repeated string the caches keep.
var cacheStrings = newInterner(1<<14, 256)

// interner keeps one copy of each string it is given. It never forgets,
// so it is bounded: past maxEntries, or for strings longer than maxLen, a
// string is returned as it is (still correct, only not shared). The fields
// it is used for repeat from object to object, so the bound is reached only
// by a pool of unusually varied names, and then costs only the saving.
type interner struct {
	mu         sync.Mutex
	m          map[string]string
	maxEntries int
	maxLen     int
}

func newInterner(maxEntries, maxLen int) *interner {
	return &interner{m: map[string]string{}, maxEntries: maxEntries, maxLen: maxLen}
}

func (in *interner) intern(s string) string {
	if s == "" || len(s) > in.maxLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[s]; ok {
		return c
	}
	if len(in.m) >= in.maxEntries {
		return s
	}
	in.m[s] = s
	return s
}
