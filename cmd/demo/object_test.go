package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
)

// readObjectFromEdgeX is the tour's curl to core-command for an Object
// resource: the reading's objectValue as JSON text.
func readObjectFromEdgeX(ctx context.Context, commandURL, device, resource string) (string, error) {
	body, err := httpGet(ctx, commandURL+"/api/v3/device/name/"+url.PathEscape(device)+"/"+url.PathEscape(resource))
	if err != nil {
		return "", err
	}
	var r responses.EventResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return "", fmt.Errorf("core-command answer %q: %w", body, err)
	}
	for _, reading := range r.Event.Readings {
		if reading.ResourceName == resource {
			raw, err := json.Marshal(reading.ObjectValue)
			return string(raw), err
		}
	}
	return "", fmt.Errorf("core-command answer holds no %s: %s", resource, body)
}
