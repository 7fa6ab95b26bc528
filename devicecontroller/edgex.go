package devicecontroller

import (
	"context"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// The small interfaces below are all the bridge needs of EdgeX. The edgex
// packages implement them; tests may too, but the package's own tests use
// the real clients against the EdgeX simulator.

// Store is one core-metadata kind: devices, device services or profiles.
type Store[E, U any] interface {
	Add(ctx context.Context, items ...E) ([]edgex.Result, error)
	Get(ctx context.Context, name string) (E, error)
	Update(ctx context.Context, patches ...U) ([]edgex.Result, error)
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]E, error)
	// ListPage is one page of the list, with EdgeX's totalCount.
	ListPage(ctx context.Context, offset, limit int) (edgex.Page[E], error)
}

// ProfileStore adds the full replacement EdgeX offers for profiles, whose
// resources and commands a PATCH cannot change.
type ProfileStore interface {
	Store[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]
	ReplaceProfiles(ctx context.Context, profiles ...dtos.DeviceProfile) ([]edgex.Result, error)
}

// CommandSender sends a device command (a set) and says where commands go:
// edgex.Command over REST, messagebus.CommandClient over MQTT.
type CommandSender interface {
	Write(ctx context.Context, device, command string, values map[string]string) error
	URL(device, command string) string
}

// Bus is the EdgeX message bus as the bridge listens to it.
type Bus interface {
	SubscribeEvents(handler func(topic string, ev dtos.Event), onError func(topic string, err error)) error
	SubscribeSystemEvents(handler func(topic string, se messagebus.SystemEvent), onError func(topic string, err error)) error
	Connected() bool
	// NotifyConnection calls fn on every change of the bus's readiness,
	// however short the outage; remove stops it.
	NotifyConnection(fn func(connected bool)) (remove func())
}

// Publisher publishes northbound telemetry.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// EdgeX is everything the bridge needs of one pool's EdgeX.
type EdgeX struct {
	Devices  Store[dtos.Device, dtos.UpdateDevice]
	Services Store[dtos.DeviceService, dtos.UpdateDeviceService]
	Profiles ProfileStore
	// Commands sends the commands that desired property values become.
	Commands CommandSender
	// Bus delivers system events and device events.
	Bus Bus
	// Ping reports whether core-metadata answers, for readiness.
	Ping func(ctx context.Context) error
}
