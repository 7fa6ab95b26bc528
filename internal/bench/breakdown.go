package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// timeSplit is where a latency phase's time went, from the histograms the
// bridge and the kube-apiserver keep of their own work, read before and
// after the phase. A latency target that is missed is explained by it:
// time waiting in the bridge's queues is the bridge's to fix, time inside
// the API server's requests and between them (watch delivery) is the
// machine's.
type timeSplit struct {
	// BridgeQueueWaitMs is the mean time an item waited in each of the
	// bridge's work queues before a worker took it, by queue name.
	BridgeQueueWaitMs map[string]float64 `json:"bridgeQueueWaitMs,omitempty"`
	// BridgeWorkMs is the mean time a worker spent on one item, by queue.
	BridgeWorkMs map[string]float64 `json:"bridgeWorkMs,omitempty"`
	// APIServerMs is the API server's mean time per request, by verb and
	// resource, for writes of the bridge's kinds and of Events.
	APIServerMs map[string]float64 `json:"apiServerMs,omitempty"`
	// APIServerRequests counts those requests.
	APIServerRequests map[string]float64 `json:"apiServerRequests,omitempty"`
	BridgeCores       float64            `json:"bridgeCores"`
	APIServerCores    float64            `json:"apiServerCores"`
	EtcdCores         float64            `json:"etcdCores"`
}

// splitProbe holds what a timeSplit is computed from at a phase's start.
type splitProbe struct {
	p                  *pool
	bridge, apiserver  scrape
	bridgeProc         procSample
	apiProc, etcdProc  procSample
	bridgeErr, apisErr error
	// profiles finish with the CPU profiles of the bridge and the API
	// server taken over the phase (with -pprof).
	profiles []<-chan error
}

// startSplit reads the counters a timeSplit needs; a failed read leaves
// that part of the split empty rather than failing the phase. With -pprof
// it also profiles the bridge and the API server for window, into files
// named after the phase.
func (p *pool) startSplit(ctx context.Context, phase string, window time.Duration) *splitProbe {
	s := &splitProbe{p: p, bridgeProc: p.bridge.sample()}
	s.profiles = append(s.profiles,
		p.bridge.cpuProfile(ctx, window, p.profilePath(phase)),
		p.rig.apiserverCPUProfile(ctx, window, p.profilePath(phase+"-apiserver")))
	s.apiProc, s.etcdProc = p.rig.controlPlane()
	s.bridge, s.bridgeErr = p.bridge.metrics(ctx)
	s.apiserver, s.apisErr = p.rig.apiserverMetrics(ctx)
	return s
}

// finish reads the counters again and computes the split.
func (s *splitProbe) finish(ctx context.Context) *timeSplit {
	out := &timeSplit{}
	bridgeNow := s.p.bridge.sample()
	apiNow, etcdNow := s.p.rig.controlPlane()
	out.BridgeCores = cores(s.bridgeProc, bridgeNow)
	out.APIServerCores, out.EtcdCores = cores(s.apiProc, apiNow), cores(s.etcdProc, etcdNow)
	if after, err := s.p.bridge.metrics(ctx); err == nil && s.bridgeErr == nil {
		out.BridgeQueueWaitMs = histogramMeans(s.bridge, after, "workqueue_queue_duration_seconds", queueName)
		out.BridgeWorkMs = histogramMeans(s.bridge, after, "workqueue_work_duration_seconds", queueName)
	} else {
		logf("  time split: bridge metrics unreadable: %v", firstErr(s.bridgeErr, err))
	}
	if after, err := s.p.rig.apiserverMetrics(ctx); err == nil && s.apisErr == nil {
		out.APIServerMs = histogramMeans(s.apiserver, after, "apiserver_request_duration_seconds", apiRequestName)
		out.APIServerRequests = histogramCounts(s.apiserver, after, "apiserver_request_duration_seconds", apiRequestName)
	} else {
		logf("  time split: API server metrics unreadable: %v", firstErr(s.apisErr, err))
	}
	for _, done := range s.profiles {
		if err := <-done; err != nil {
			logf("  profile: %v", err)
		}
	}
	return out
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// queueName names a work queue sample by its queue; the bridge's queues
// are the ones it named (the per-kind controllers and edge queues, and
// telemetry).
func queueName(labels map[string]string) string { return labels["name"] }

// apiRequestName names an API server request sample "VERB resource" (with
// "/subresource"), for the writes of the bridge's own kinds and of Events;
// other requests are left out ("").
func apiRequestName(labels map[string]string) string {
	switch labels["verb"] {
	case "POST", "PUT", "PATCH", "DELETE":
	default:
		return ""
	}
	res := labels["resource"]
	switch res {
	case "devices", "deviceservices", "deviceprofiles", "events":
	default:
		return ""
	}
	if sub := labels["subresource"]; sub != "" {
		res += "/" + sub
	}
	return labels["verb"] + " " + res
}

// histogramMeans is the mean of each histogram's observations between two
// scrapes, in milliseconds, grouped by key (samples whose key is "" are
// skipped). Histograms with no new observation are left out.
func histogramMeans(before, after scrape, name string, key func(map[string]string) string) map[string]float64 {
	sums := diffCounts(groupSums(before, name+"_sum", key), groupSums(after, name+"_sum", key))
	counts := diffCounts(groupSums(before, name+"_count", key), groupSums(after, name+"_count", key))
	out := map[string]float64{}
	for k, n := range counts {
		if n > 0 {
			out[k] = sums[k] / n * 1000
		}
	}
	return out
}

// histogramCounts is how many observations each histogram gained.
func histogramCounts(before, after scrape, name string, key func(map[string]string) string) map[string]float64 {
	out := map[string]float64{}
	for k, n := range diffCounts(groupSums(before, name+"_count", key), groupSums(after, name+"_count", key)) {
		if n > 0 {
			out[k] = n
		}
	}
	return out
}

func groupSums(s scrape, name string, key func(map[string]string) string) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range s {
		if smp.name != name {
			continue
		}
		if k := key(smp.labels); k != "" {
			out[k] += smp.value
		}
	}
	return out
}

// String is the split in a sentence, for the results' notes.
func (t *timeSplit) String() string {
	if t == nil {
		return ""
	}
	var parts []string
	if s := formatMeans(t.BridgeQueueWaitMs, nil); s != "" {
		parts = append(parts, "bridge queue wait "+s)
	}
	if s := formatMeans(t.BridgeWorkMs, nil); s != "" {
		parts = append(parts, "bridge work per item "+s)
	}
	if s := formatMeans(t.APIServerMs, t.APIServerRequests); s != "" {
		parts = append(parts, "API server time per write "+s)
	}
	parts = append(parts, fmt.Sprintf("cores: bridge %.2f, API server %.2f, etcd %.2f", t.BridgeCores, t.APIServerCores, t.EtcdCores))
	return strings.Join(parts, "; ")
}

func formatMeans(means, counts map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(means)) {
		if counts != nil {
			parts = append(parts, fmt.Sprintf("%s %s (n=%.0f)", k, ms(means[k]), counts[k]))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s", k, ms(means[k])))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
