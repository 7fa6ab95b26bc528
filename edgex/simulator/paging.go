package simulator

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
)

// page is a list request's window, validated as core-metadata does.
type page struct {
	offset, limit int
	labels        []string
}

// parsePage reads offset, limit and labels like edgex-go's
// ParseGetAllObjectsRequestQueryString: offset 0..MaxInt32 (default 0),
// limit -1..maxLimit (default 20, -1 meaning maxLimit), labels split on
// commas.
func parsePage(q url.Values, maxLimit int) (page, *apiError) {
	var p page
	var err *apiError
	if p.offset, err = queryInt(q, common.Offset, common.DefaultOffset, 0, math.MaxInt32); err != nil {
		return p, err
	}
	if p.limit, err = queryInt(q, common.Limit, common.DefaultLimit, -1, maxLimit); err != nil {
		return p, err
	}
	if p.limit == -1 {
		p.limit = maxLimit
	}
	if v := q.Get(common.Labels); v != "" {
		p.labels = strings.Split(strings.TrimSpace(v), common.CommaSeparator)
	}
	return p, nil
}

func queryInt(q url.Values, key string, def, lo, hi int) (int, *apiError) {
	if def > hi {
		def = hi
	}
	raw := q.Get(key)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, newAPIError(http.StatusBadRequest, "failed to parse querystring %s's value %s into integer. Error:%s", key, raw, err.Error())
	}
	if n < lo || n > hi {
		return 0, newAPIError(http.StatusBadRequest, "querystring %s's value %v is out of min %v ~ max %v range.", key, n, lo, hi)
	}
	return n, nil
}

// window cuts one page out of items already filtered and ordered, as the
// Redis queries do: a zero limit is an empty page, an offset past the end is
// 416, an offset exactly at the end is an empty page.
func window[T any](items []T, p page) ([]T, *apiError) {
	if p.limit == 0 {
		return []T{}, nil
	}
	if p.offset > len(items) {
		return nil, newAPIError(http.StatusRequestedRangeNotSatisfiable, "query objects bounds out of range. length:%v", len(items))
	}
	end := len(items)
	if p.offset+p.limit < end {
		end = p.offset + p.limit
	}
	return slices.Clone(items[p.offset:end]), nil
}

// Orders. Redis keeps the collections in sorted sets whose members are the
// stored keys: the full collections score 0 (so they come back by id,
// descending), the per-label, per-service and per-profile sets score the
// modification time (newest first, then by id).

type ordered interface {
	models.Device | models.DeviceProfile | models.DeviceService
}

func idOf[T ordered](v T) (string, int64) {
	switch x := any(v).(type) {
	case models.Device:
		return x.Id, x.Modified
	case models.DeviceProfile:
		return x.Id, x.Modified
	case models.DeviceService:
		return x.Id, x.Modified
	}
	return "", 0
}

func byIDDesc[T ordered](a, b T) int {
	ida, _ := idOf(a)
	idb, _ := idOf(b)
	return strings.Compare(idb, ida)
}

func byModifiedDesc[T ordered](a, b T) int {
	_, ma := idOf(a)
	_, mb := idOf(b)
	if ma != mb {
		if ma > mb {
			return -1
		}
		return 1
	}
	return byIDDesc(a, b)
}

func hasLabels(have, want []string) bool {
	for _, l := range want {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}

func sortedValues[T ordered](m map[string]T, keep func(T) bool, order func(a, b T) int) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, order)
	return out
}

func (db *database) devicesWhere(keep func(models.Device) bool, order func(a, b models.Device) int) []models.Device {
	return sortedValues(db.devices, keep, order)
}

// labelled lists a collection for GET .../all: by id without labels, by
// modification time when filtered by labels.
func labelled[T ordered](m map[string]T, labels []string, labelsOf func(T) []string) []T {
	if len(labels) == 0 {
		return sortedValues(m, nil, byIDDesc[T])
	}
	return sortedValues(m, func(v T) bool { return hasLabels(labelsOf(v), labels) }, byModifiedDesc[T])
}

func (db *database) listDevices(labels []string) []models.Device {
	return labelled(db.devices, labels, func(d models.Device) []string { return d.Labels })
}

func (db *database) listProfiles(labels []string) []models.DeviceProfile {
	return labelled(db.profiles, labels, func(p models.DeviceProfile) []string { return p.Labels })
}

func (db *database) listServices(labels []string) []models.DeviceService {
	return labelled(db.services, labels, func(s models.DeviceService) []string { return s.Labels })
}

// pageQuery renders a window as the query core-command sends core-metadata.
func pageQuery(offset, limit int) url.Values {
	return url.Values{common.Offset: {fmt.Sprint(offset)}, common.Limit: {fmt.Sprint(limit)}}
}
