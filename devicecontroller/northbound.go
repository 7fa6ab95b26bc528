package devicecontroller

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/types"
)

// northboundItem is one event waiting for the northbound broker.
type northboundItem struct {
	key types.NamespacedName
	ev  dtos.Event
}

// NorthboundEvent is what the bridge re-publishes for each device event,
// addressed by Kubernetes identity rather than EdgeX names.
type NorthboundEvent struct {
	Pool      string              `json:"pool"`
	Namespace string              `json:"namespace"`
	Device    string              `json:"device"`
	EdgeXName string              `json:"edgexName"`
	Profile   string              `json:"profile"`
	Source    string              `json:"source"`
	Origin    time.Time           `json:"origin"`
	Readings  []NorthboundReading `json:"readings"`
}

// NorthboundReading is one reading with its value typed as JSON: a boolean,
// a number, a string, an array or an object. Binary values are not
// carried; their media type and size are.
type NorthboundReading struct {
	Resource  string          `json:"resource"`
	ValueType string          `json:"valueType"`
	Value     json.RawMessage `json:"value,omitempty"`
	Units     string          `json:"units,omitempty"`
	MediaType string          `json:"mediaType,omitempty"`
	Size      int             `json:"size,omitempty"`
}

// NorthboundTopic is where a device's events for one source are published:
// <prefix>/<pool>/<namespace>/<device>/<source>. Subscribe to
// <prefix>/<pool>/# for a whole pool, or <prefix>/+/<namespace>/<device>/#
// for one device.
func NorthboundTopic(prefix, pool, namespace, device, source string) string {
	return strings.Join([]string{prefix, pool, namespace, device, source}, "/")
}

// enqueueNorthbound hands an event to the northbound publisher without
// ever waiting: it runs on the bus's delivery path. A full queue means the
// northbound broker is behind; the event is counted as dropped.
func (t *telemetry) enqueueNorthbound(key types.NamespacedName, ev dtos.Event) {
	if t.opts.Northbound == nil {
		return
	}
	select {
	case t.northbound <- northboundItem{key: key, ev: ev}:
	default:
		t.counters.northboundDropped.Inc()
	}
}

// publishNorthbound re-publishes queued events, one at a time and each
// within NorthboundTimeout, until ctx ends. It is a manager runnable
// (leader only); without northbound publishing nothing is ever queued.
func (t *telemetry) publishNorthbound(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case item := <-t.northbound:
			t.publishOne(ctx, item.key, item.ev)
		}
	}
}

func (t *telemetry) publishOne(ctx context.Context, key types.NamespacedName, ev dtos.Event) {
	out := NorthboundEvent{
		Pool: t.opts.NodePool, Namespace: key.Namespace, Device: key.Name, EdgeXName: ev.DeviceName,
		Profile: ev.ProfileName, Source: ev.SourceName, Origin: time.Unix(0, ev.Origin).UTC(),
	}
	for _, r := range ev.Readings {
		nr := NorthboundReading{Resource: r.ResourceName, ValueType: r.ValueType, Units: r.Units}
		if r.ValueType == "Binary" {
			nr.MediaType, nr.Size = r.MediaType, len(r.BinaryValue)
		} else {
			nr.Value = typedJSON(r)
		}
		out.Readings = append(out.Readings, nr)
	}
	body, err := json.Marshal(out)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, t.opts.NorthboundTimeout)
		err = t.opts.Northbound.Publish(ctx, NorthboundTopic(t.opts.NorthboundPrefix, t.opts.NodePool, key.Namespace, key.Name, ev.SourceName), body)
		cancel()
	}
	if err != nil {
		t.counters.northboundErrors.Inc()
		return
	}
	t.counters.northboundSent.Inc()
}

// typedJSON renders a reading's text value as the JSON value it stands for.
func typedJSON(r dtos.BaseReading) json.RawMessage {
	if r.ObjectValue != nil {
		raw, err := json.Marshal(r.ObjectValue)
		if err == nil {
			return raw
		}
	}
	switch {
	case r.ValueType == "Bool":
		if b, err := strconv.ParseBool(r.Value); err == nil {
			return json.RawMessage(strconv.FormatBool(b))
		}
	case strings.HasSuffix(r.ValueType, "Array"), r.ValueType == "Object":
		if json.Valid([]byte(r.Value)) {
			return json.RawMessage(r.Value)
		}
	case strings.HasPrefix(r.ValueType, "Int"), strings.HasPrefix(r.ValueType, "Uint"):
		if _, err := strconv.ParseInt(r.Value, 10, 64); err == nil {
			return json.RawMessage(r.Value)
		}
		if _, err := strconv.ParseUint(r.Value, 10, 64); err == nil {
			return json.RawMessage(r.Value)
		}
	case strings.HasPrefix(r.ValueType, "Float"):
		if f, err := strconv.ParseFloat(r.Value, 64); err == nil {
			if raw, err := json.Marshal(f); err == nil {
				return raw
			}
		}
	}
	raw, _ := json.Marshal(r.Value)
	return raw
}
