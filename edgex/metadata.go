package edgex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	dtoCommon "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
)

// Result is the outcome of one item of a batch call, in the order the items
// were given. Err is an *Error with the item's own status code, kind and
// EdgeX message.
type Result struct {
	ID  string
	Err error
}

// Page is one page of a list, with the total EdgeX reported.
type Page[T any] struct {
	Items      []T
	TotalCount int
}

// Kind is the core-metadata client for one kind of object: T is its DTO and
// U its PATCH DTO. Devices, device services and profiles share this one
// implementation and differ only in their kindSpec.
type Kind[T, U any] struct {
	svc  *service
	spec kindSpec[T, U]
	// pageSize is the limit List asks for per page.
	pageSize int
}

// kindSpec is what tells one core-metadata kind from another.
type kindSpec[T, U any] struct {
	noun, plural string // for messages: "device profile", "device profiles"
	route        string // /api/v3/deviceprofile
	updateRoute  string // the PATCH route, /api/v3/deviceprofile/basicinfo
	one, many    string // answer fields: "profile", "profiles"
	name         func(T) string
	patchName    func(U) string
	addRequest   func(T) validator
	patchRequest func(U) validator
}

// validator is every EdgeX request DTO.
type validator interface{ Validate() error }

// Metadata is the core-metadata client.
type Metadata struct {
	Devices  *Kind[dtos.Device, dtos.UpdateDevice]
	Services *Kind[dtos.DeviceService, dtos.UpdateDeviceService]
	Profiles *Kind[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]
	svc      *service
}

// NewMetadata returns a core-metadata client for opts.MetadataURL.
func NewMetadata(opts Options) (*Metadata, error) {
	opts = opts.withDefaults()
	svc, err := newService("core-metadata", opts.MetadataURL, opts)
	if err != nil {
		return nil, err
	}
	return &Metadata{
		Devices:  &Kind[dtos.Device, dtos.UpdateDevice]{svc: svc, spec: deviceSpec, pageSize: opts.PageSize},
		Services: &Kind[dtos.DeviceService, dtos.UpdateDeviceService]{svc: svc, spec: serviceSpec, pageSize: opts.PageSize},
		Profiles: &Kind[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]{svc: svc, spec: profileSpec, pageSize: opts.PageSize},
		svc:      svc,
	}, nil
}

var deviceSpec = kindSpec[dtos.Device, dtos.UpdateDevice]{
	noun: "device", plural: "devices",
	route: "/api/v3/device", updateRoute: "/api/v3/device",
	one: "device", many: "devices",
	name:      func(d dtos.Device) string { return d.Name },
	patchName: func(u dtos.UpdateDevice) string { return nameOrID(u.Name, u.Id) },
	addRequest: func(d dtos.Device) validator {
		return requests.NewAddDeviceRequest(d)
	},
	patchRequest: func(u dtos.UpdateDevice) validator {
		return requests.NewUpdateDeviceRequest(u)
	},
}

var serviceSpec = kindSpec[dtos.DeviceService, dtos.UpdateDeviceService]{
	noun: "device service", plural: "device services",
	route: "/api/v3/deviceservice", updateRoute: "/api/v3/deviceservice",
	one: "service", many: "services",
	name:      func(s dtos.DeviceService) string { return s.Name },
	patchName: func(u dtos.UpdateDeviceService) string { return nameOrID(u.Name, u.Id) },
	addRequest: func(s dtos.DeviceService) validator {
		return requests.NewAddDeviceServiceRequest(s)
	},
	patchRequest: func(u dtos.UpdateDeviceService) validator {
		return requests.NewUpdateDeviceServiceRequest(u)
	},
}

// profileSpec patches basic info only: resources and commands of a profile
// change through ReplaceProfiles.
var profileSpec = kindSpec[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]{
	noun: "device profile", plural: "device profiles",
	route: "/api/v3/deviceprofile", updateRoute: "/api/v3/deviceprofile/basicinfo",
	one: "profile", many: "profiles",
	name:      func(p dtos.DeviceProfile) string { return p.Name },
	patchName: func(u dtos.UpdateDeviceProfileBasicInfo) string { return nameOrID(u.Name, u.Id) },
	addRequest: func(p dtos.DeviceProfile) validator {
		return requests.NewDeviceProfileRequest(p)
	},
	patchRequest: func(u dtos.UpdateDeviceProfileBasicInfo) validator {
		return requests.DeviceProfileBasicInfoRequest{BaseRequest: dtoCommon.NewBaseRequest(), BasicInfo: u}
	},
}

func nameOrID(name, id *string) string {
	switch {
	case name != nil:
		return *name
	case id != nil:
		return *id
	}
	return ""
}

// Ping reports whether core-metadata answers as EdgeX v3.
func (m *Metadata) Ping(ctx context.Context) error {
	return ping(ctx, m.svc)
}

func ping(ctx context.Context, svc *service) error {
	return svc.do(ctx, call{
		op: "ping " + svc.name, method: http.MethodGet, route: "/api/v3/ping", repeatable: true,
		decode: func(_ int, body []byte) error { return decodePing(body) },
	})
}

// ReplaceProfiles replaces whole profiles (PUT), resources and commands
// included. Repeating a full replacement means the same, so it is retried.
// err is nil only when every profile was replaced.
func (m *Metadata) ReplaceProfiles(ctx context.Context, profiles ...dtos.DeviceProfile) ([]Result, error) {
	spec := m.Profiles.spec
	b := batch{verb: "replace", noun: spec.noun, plural: spec.plural, method: http.MethodPut, route: spec.route, repeatable: true}
	for _, p := range profiles {
		b.add(p.Name, requests.NewDeviceProfileRequest(p))
	}
	return b.run(ctx, m.svc)
}

// Add creates objects in one POST. The answer is 207 whatever happened, so
// every item's own status is checked; err is nil only when every item was
// created, and then Results hold the new ids. Never retried: EdgeX may have
// created some items before the answer was lost.
func (k *Kind[T, U]) Add(ctx context.Context, items ...T) ([]Result, error) {
	b := batch{verb: "add", noun: k.spec.noun, plural: k.spec.plural, method: http.MethodPost, route: k.spec.route}
	for _, it := range items {
		b.add(k.spec.name(it), k.spec.addRequest(it))
	}
	return b.run(ctx, k.svc)
}

// Update patches objects in one PATCH; fields left nil are unchanged. err is
// nil only when every item was updated.
func (k *Kind[T, U]) Update(ctx context.Context, patches ...U) ([]Result, error) {
	b := batch{verb: "update", noun: k.spec.noun, plural: k.spec.plural, method: http.MethodPatch, route: k.spec.updateRoute, repeatable: true}
	for _, p := range patches {
		b.add(k.spec.patchName(p), k.spec.patchRequest(p))
	}
	return b.run(ctx, k.svc)
}

// Get returns the object called name; a missing one is KindNotFound.
func (k *Kind[T, U]) Get(ctx context.Context, name string) (T, error) {
	var out T
	op := fmt.Sprintf("get %s %q", k.spec.noun, name)
	if err := nameParam(op, k.spec.noun, name); err != nil {
		return out, err
	}
	err := k.svc.do(ctx, call{
		op: op, method: http.MethodGet, route: k.spec.route + "/name/{name}",
		params: map[string]string{"name": name}, repeatable: true,
		decode: func(_ int, body []byte) (err error) {
			out, err = decodeOne[T](body, k.spec.one)
			return err
		},
	})
	return out, err
}

// Delete removes the object called name. A missing one is KindNotFound,
// which is also what a retried delete whose first attempt succeeded says.
func (k *Kind[T, U]) Delete(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete %s %q", k.spec.noun, name)
	if err := nameParam(op, k.spec.noun, name); err != nil {
		return err
	}
	return k.svc.do(ctx, call{
		op: op, method: http.MethodDelete, route: k.spec.route + "/name/{name}",
		params: map[string]string{"name": name}, repeatable: true,
		decode: func(_ int, body []byte) error { return decodeAck(body) },
	})
}

// ListPage returns one page; limit <= 0 means the configured page size.
func (k *Kind[T, U]) ListPage(ctx context.Context, offset, limit int) (Page[T], error) {
	if limit <= 0 {
		limit = k.pageSize
	}
	op := fmt.Sprintf("list %s (offset %d, limit %d)", k.spec.plural, offset, limit)
	if offset < 0 {
		return Page[T]{}, &Error{Kind: KindInvalid, Op: op, Message: "negative offset"}
	}
	var page Page[T]
	err := k.svc.do(ctx, call{
		op: op, method: http.MethodGet, route: k.spec.route + "/all",
		query:      map[string]string{"offset": strconv.Itoa(offset), "limit": strconv.Itoa(limit)},
		repeatable: true,
		decode: func(_ int, body []byte) (err error) {
			page, err = decodePage[T](body, k.spec.many)
			return err
		},
	})
	return page, err
}

// maxListRestarts bounds how often List starts over because the objects
// changed while it paged through them.
const maxListRestarts = 3

// errListChanged means the pages did not come from one consistent list.
var errListChanged = errors.New("the list changed while it was paged")

// List returns every object, page by page until totalCount is reached. Any
// failed or inconsistent page fails the whole list: a partial list would
// look like deleted objects to the caller. When the total changes between
// pages, an object shows up twice, or the objects before a page boundary
// shifted, the listing starts over.
func (k *Kind[T, U]) List(ctx context.Context) ([]T, error) {
	for range maxListRestarts {
		items, err := k.listOnce(ctx)
		if !errors.Is(err, errListChanged) {
			return items, err
		}
	}
	return nil, &Error{Kind: KindUnavailable, Op: "list " + k.spec.plural,
		Message: fmt.Sprintf("the list kept changing over %d attempts", maxListRestarts), Err: errListChanged}
}

func (k *Kind[T, U]) listOnce(ctx context.Context) ([]T, error) {
	var items []T
	seen := map[string]bool{}
	total := -1
	for total < 0 || len(items) < total {
		offset, limit := k.nextPage(len(items))
		page, err := k.ListPage(ctx, offset, limit)
		if err != nil {
			return nil, err
		}
		if total >= 0 && page.TotalCount != total {
			return nil, errListChanged
		}
		total = page.TotalCount
		fresh, err := k.afterOverlap(page.Items, items)
		if err != nil {
			return nil, err
		}
		if len(fresh) == 0 && len(items) < total {
			return nil, &Error{Kind: KindMalformed, Op: "list " + k.spec.plural,
				Message: fmt.Sprintf("no new item at offset %d although totalCount is %d", offset, total)}
		}
		for _, it := range fresh {
			name := k.spec.name(it)
			if seen[name] {
				return nil, errListChanged
			}
			seen[name] = true
			items = append(items, it)
		}
	}
	if len(items) > total {
		return nil, errListChanged
	}
	if items == nil {
		items = []T{}
	}
	return items, nil
}

// nextPage is the window after the first listed items. Each page after the
// first starts one item early: a delete before the boundary paired with an
// add after it keeps totalCount unchanged but shifts an unseen object into
// the part already paged, where it would be missed without a trace.
func (k *Kind[T, U]) nextPage(listed int) (offset, limit int) {
	if listed == 0 {
		return 0, k.pageSize
	}
	return listed - 1, max(k.pageSize, 2)
}

// afterOverlap checks that a page after the first starts with the last
// object already listed and returns the objects after it. An empty page is
// left for the caller to judge against totalCount.
func (k *Kind[T, U]) afterOverlap(page, listed []T) ([]T, error) {
	if len(listed) == 0 || len(page) == 0 {
		return page, nil
	}
	if k.spec.name(page[0]) != k.spec.name(listed[len(listed)-1]) {
		return nil, errListChanged
	}
	return page[1:], nil
}

// batch is one multi-item call. Items that fail EdgeX's own validation are
// answered locally and left out of the request, because EdgeX rejects a
// whole batch with one 400 when a single item in it is invalid.
type batch struct {
	verb, noun, plural, method, route string
	repeatable                        bool
	names                             []string
	requests                          []validator
}

func (b *batch) add(name string, req validator) {
	b.names = append(b.names, name)
	b.requests = append(b.requests, req)
}

func (b *batch) itemOp(i int) string { return fmt.Sprintf("%s %s %q", b.verb, b.noun, b.names[i]) }

func (b *batch) run(ctx context.Context, svc *service) ([]Result, error) {
	results := make([]Result, len(b.requests))
	var send []validator
	var sentIndex []int
	for i, req := range b.requests {
		if err := req.Validate(); err != nil {
			results[i].Err = &Error{Kind: KindInvalid, Op: b.itemOp(i), Message: err.Error()}
			continue
		}
		send = append(send, req)
		sentIndex = append(sentIndex, i)
	}
	if len(send) > 0 {
		answered, err := b.send(ctx, svc, send)
		if err != nil {
			return nil, err
		}
		for j, r := range answered {
			results[sentIndex[j]] = r
		}
	}
	return results, b.itemErrors(results)
}

func (b *batch) send(ctx context.Context, svc *service, send []validator) ([]Result, error) {
	body, err := json.Marshal(send)
	if err != nil {
		return nil, fmt.Errorf("%s %s: encode: %w", b.verb, b.plural, err)
	}
	var answered []Result
	err = svc.do(ctx, call{
		op: fmt.Sprintf("%s %s (batch of %d)", b.verb, b.plural, len(send)), method: b.method, route: b.route,
		body: body, repeatable: b.repeatable,
		decode: func(_ int, body []byte) (err error) {
			answered, err = decodeResults(body, len(send))
			return err
		},
	})
	return answered, err
}

// itemErrors names each failed item's operation and joins the failures, so
// that a one-item call's error is that item's error.
func (b *batch) itemErrors(results []Result) error {
	var errs []error
	for i := range results {
		var e *Error
		if errors.As(results[i].Err, &e) && e.Op == "" {
			e.Op = b.itemOp(i)
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	return errors.Join(errs...)
}
