package devicecontroller

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// goneAtEdge reports whether obj is an imported object whose EdgeX
// original a complete view no longer has.
func (r *reconciler[O, E]) goneAtEdge(obj O, name string) bool {
	if !r.mirrorsEdge(obj) || !r.view.Complete() {
		return false
	}
	return !r.view.Has(name)
}

// mirrorsEdge reports whether obj is an import that still mirrors its
// EdgeX original: the bridge imported it (origin edge) and nobody took it
// over (managed). Only such an object may ever be deleted because the edge
// lost its original. Everything else was born in the cloud (applied there,
// managed or not, or imported by yurt-iot-dock, which left no mark that
// tells its imports from a person's manifests) and goes only when a person
// deletes it.
func (r *reconciler[O, E]) mirrorsEdge(obj O) bool {
	return !r.kind.managed(obj) && obj.GetAnnotations()[v1alpha1.OriginAnnotation] == v1alpha1.OriginEdge
}

// keptAtEdge reports whether EdgeX must hold obj even after the edge lost
// it, and why: it was born in the cloud, or a managed or cloud-born object
// of the pool uses it (an imported profile or service of such a device),
// which could not be re-created without it.
func (r *reconciler[O, E]) keptAtEdge(ctx context.Context, obj O) (bool, string, error) {
	if !r.mirrorsEdge(obj) {
		return true, "it was applied in the cloud", nil
	}
	if r.neededBy == nil {
		return false, "", nil
	}
	user, err := r.neededBy(ctx, v1alpha1.EdgeXName(obj))
	if err != nil || user == "" {
		return false, "", err
	}
	return true, "it is used by " + user, nil
}

// usersOf returns a lookup of the objects of this kind, by index, that
// EdgeX must hold (managed, or born in the cloud) and that are not being
// deleted: the users that keep an imported dependency alive.
func (r *reconciler[O, E]) usersOf(index string) func(ctx context.Context, name string) (string, error) {
	return func(ctx context.Context, name string) (string, error) {
		list := r.kind.newList()
		if err := r.client.List(ctx, list, client.MatchingFields{index: name}, client.UnsafeDisableDeepCopy); err != nil {
			return "", fmt.Errorf("find %ss that use %q: %w", r.kind.name(), name, err)
		}
		for _, o := range r.kind.items(list) {
			if r.serves(o) && o.GetDeletionTimestamp().IsZero() && !r.mirrorsEdge(o) {
				return fmt.Sprintf("%s %s", r.kind.name(), objectKey(o)), nil
			}
		}
		return "", nil
	}
}

// namedConventionally reports whether obj is named as the bridge would look
// for it by its EdgeX name: the EdgeX name itself (an object applied in the
// cloud) or the name an import prefers for it. Such objects are found by a
// lookup by name, so the EdgeX-name index leaves them out; it holds the
// rest (a name taken by another object at import, an annotation claiming
// an EdgeX name by hand).
func (r *reconciler[O, E]) namedConventionally(obj client.Object) bool {
	name := v1alpha1.EdgeXName(obj)
	return obj.GetName() == name || obj.GetName() == convert.PreferredKubeName(r.opts.NodePool, name)
}

// conventionalKeys are where namedConventionally objects claiming the
// EdgeX name would be, in every watched namespace.
func (r *reconciler[O, E]) conventionalKeys(name string) []client.ObjectKey {
	names := []string{name}
	if preferred := convert.PreferredKubeName(r.opts.NodePool, name); preferred != name {
		names = append(names, preferred)
	}
	keys := make([]client.ObjectKey, 0, len(names)*len(r.opts.Namespaces))
	for _, ns := range r.opts.Namespaces {
		for _, n := range names {
			keys = append(keys, client.ObjectKey{Namespace: ns, Name: n})
		}
	}
	return keys
}

// owner returns the object that represents the named EdgeX object in this
// pool: the oldest claimant when several objects claim one EdgeX name.
func (r *reconciler[O, E]) owner(ctx context.Context, name string) (O, bool, error) {
	claims, err := r.claimants(ctx, name)
	if err != nil || len(claims) == 0 {
		var zero O
		return zero, false, err
	}
	return claims[0], true, nil
}

// claimants lists the objects in the pool that claim the named EdgeX
// object, the one that represents it first: the incumbent (the object whose
// status holds the EdgeX object's id), else the oldest.
func (r *reconciler[O, E]) claimants(ctx context.Context, name string) ([]O, error) {
	list := r.kind.newList()
	if err := r.client.List(ctx, list, client.MatchingFields{indexEdgeXName: name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("find %s objects for EdgeX name %q: %w", r.kind.name(), name, err)
	}
	var claims []O
	for _, o := range r.kind.items(list) {
		if r.serves(o) {
			claims = append(claims, o)
		}
	}
	for _, key := range r.conventionalKeys(name) {
		o := r.kind.newObject()
		// A shallow copy, as the index's list gives: only read.
		if err := r.client.Get(ctx, key, o, client.UnsafeDisableDeepCopy); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("find %s %s for EdgeX name %q: %w", r.kind.name(), key, name, err)
		}
		if v1alpha1.EdgeXName(o) == name && r.serves(o) {
			claims = append(claims, o)
		}
	}
	if len(claims) < 2 {
		return claims, nil
	}
	edgeID := ""
	if edge, ok := r.view.Get(name); ok {
		edgeID = r.kind.edgeID(edge)
	}
	incumbent := func(o O) bool { return edgeID != "" && r.kind.knownEdgeID(o) == edgeID }
	sort.SliceStable(claims, func(i, j int) bool {
		a, b := claims[i], claims[j]
		if ia, ib := incumbent(a), incumbent(b); ia != ib {
			return ia
		}
		ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		// Created in the same second: an object named like the EdgeX
		// object wins over one that claims it by annotation.
		if na, nb := a.GetName() == name, b.GetName() == name; na != nb {
			return na
		}
		return objectKey(a) < objectKey(b)
	})
	return claims, nil
}
