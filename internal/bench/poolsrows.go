package bench

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// maxCostGrowth is how much more a bridge among many pools may cost than
// the same pool alone: its cost must depend on its own pool, not on the
// cluster.
const maxCostGrowth = 0.10

// maxWatchEventsPerWrite bounds the watch events the API server sends per
// Device write: one for the pool's bridge and one for the benchmark's
// watch of that pool, with room for writes the benchmark's watch coalesces
// differently. A bridge that received other pools' objects would make it
// about one more per pool.
const maxWatchEventsPerWrite = 3

// poolsRows are row 9's lines: per-bridge memory and CPU beside the pool
// alone, the API server's share, the import and commands.
func (r *results) poolsRows() []row {
	rows := []row{
		{ID: "9a", Measure: "Many pools on one API server: bridge RSS", Target: "median bridge within 10 % of the pool alone", Result: fail, Measured: missing},
		{ID: "9b", Measure: "Many pools on one API server: bridge CPU (CPU-seconds over the steady window, from /proc)", Target: "median bridge within 10 % of the pool alone", Result: fail, Measured: missing},
		{ID: "9c", Measure: "Many pools on one API server: the API server's CPU and watches", Target: fmt.Sprintf("≤ %d watch events per Device write (each pool's objects reach its own watchers only)", maxWatchEventsPerWrite), Result: fail, Measured: missing},
		{ID: "9d", Measure: "Many pools on one API server: import, every pool's bridge started at once", Target: "—", Result: reference, Measured: missing},
		{ID: "9e", Measure: "Many pools on one API server: command latency over REST, desiredValue patched → device written, telemetry flowing", Target: "p99 ≤ 200 ms", Result: fail, Measured: missing},
	}
	p := r.Pools
	if p == nil {
		return rows
	}
	shape := fmt.Sprintf(" (%d bridges × %s devices = %s, one namespace, %s)", p.Pools, count(p.DevicesPerPool), count(p.Pools*p.DevicesPerPool), p.budget())
	for i := range rows {
		rows[i].Measure += shape
	}
	alone, st := p.Alone.Steady, p.Steady
	if st != nil && alone != nil {
		busy := st.Cluster.Machine.describe()
		rows[0].Measured = fmt.Sprintf("median %.1f MB (max %.1f MB), alone %.1f MB: %s", st.RSSP50, st.RSSMax, alone.BridgeRSSMB, change(st.RSSP50, alone.BridgeRSSMB))
		rows[0].Result = verdict(within(st.RSSP50, alone.BridgeRSSMB, maxCostGrowth))
		rows[1].Measured = fmt.Sprintf("median %.4f cores = %.2f CPU-s in %s (max %.4f cores), alone %.4f cores = %.2f CPU-s: %s; %s",
			st.CoresP50, st.CoresP50*st.WindowSeconds, secs(st.WindowSeconds), st.CoresMax, alone.BridgeCores, alone.BridgeCores*alone.WindowSeconds,
			change(st.CoresP50, alone.BridgeCores), busy)
		rows[1].Result = verdict(within(st.CoresP50, alone.BridgeCores, maxCostGrowth))
		c := st.Cluster
		rows[2].Measured = fmt.Sprintf("API server %.2f cores, %.0f MB RSS (alone: %.2f cores); etcd %.2f cores; %.0f watches open (%s); %.2f watch events per Device write (%.0f writes, %.0f/s of all kinds)",
			c.APIServerCores, c.APIServerRSSMB, aloneAPIServerCores(p), c.EtcdCores, c.WatchesTotal, formatCounts(c.Watches), c.WatchEventsPerWrite, c.DeviceWrites, c.APIWritesPerSecond)
		rows[2].Result = verdict(c.DeviceWrites > 0 && c.WatchEventsPerWrite <= maxWatchEventsPerWrite)
	}
	if imp := p.Import; imp != nil {
		rows[3].Measured = fmt.Sprintf("per pool p50 %s, max %s; all %s devices in %s (%.1f API writes/device, then %s managedFields emptied; API server %.2f cores, %s)",
			secs(imp.P50Seconds), secs(imp.MaxSeconds), count(imp.Devices), secs(imp.WallSeconds), imp.APIWritesPerDevice,
			count(int(imp.ManagedFieldsEmptied)), imp.APIServerCores, imp.Machine.describe())
		if a := p.Alone.Import; a != nil {
			rows[3].Measured += fmt.Sprintf("; the pool alone: %s", secs(a.Seconds))
		}
		if imp.Completed < imp.Devices {
			rows[3].Measured = fmt.Sprintf("incomplete: %d of %d; ", imp.Completed, imp.Devices) + rows[3].Measured
			rows[3].Result = fail
		}
	}
	if c := p.Commands; c != nil {
		rows[4].Measure += fmt.Sprintf(", %.0f/s across all pools", c.RatePerSecond)
		rows[4].Measured = describeLatency(c.Latency) + fmt.Sprintf("; worst pool's p99 %s", ms(c.WorstPoolP99Ms))
		if a := p.Alone.Commands; a != nil {
			rows[4].Measured += fmt.Sprintf("; the pool alone: p50 %s, p99 %s", ms(a.Latency.P50), ms(a.Latency.P99))
		}
		rows[4].Result = verdict(c.Latency.Count > 0 && c.Latency.Missed == 0 && c.Latency.P99 <= float64(slowCommand.Milliseconds()))
	}
	return rows
}

// budget says how the bridges' telemetry status writes were bounded.
func (p *poolsResult) budget() string {
	if p.StatusWriteRate <= 0 {
		return "no status write budget"
	}
	return fmt.Sprintf("each with --status-write-rate=%s", strconv.FormatFloat(p.StatusWriteRate, 'f', -1, 64))
}

func aloneAPIServerCores(p *poolsResult) float64 {
	if p.Alone.Cluster == nil {
		return 0
	}
	return p.Alone.Cluster.APIServerCores
}

// within says whether v is at most frac above ref.
func within(v, ref, frac float64) bool { return ref > 0 && v <= ref*(1+frac) }

// change is v against ref in percent.
func change(v, ref float64) string {
	if ref <= 0 {
		return "no reference"
	}
	return fmt.Sprintf("%+.1f %%", 100*(v/ref-1))
}

func (m machineWindow) describe() string {
	s := fmt.Sprintf("machine %.0f %% busy", 100*m.BusyShare)
	if m.Saturated {
		s += ", CPU-saturated"
	}
	return s
}

// poolsDetails are row 9's figures behind the table.
func (r *results) poolsDetails() string {
	p := r.Pools
	if p == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "- Many pools: %d pools of %s devices in namespace %q, each with its own simulator, topics under `edgex-<pool>` and bridge process (`--nodepool=<pool>`); "+
		"the pool alone ran first, and its bridge was stopped before the others started.", p.Pools, count(p.DevicesPerPool), p.Namespace)
	if a := p.Alone.Steady; a != nil {
		fmt.Fprintf(&b, " Alone, steady: bridge %.4f cores, %.1f MB (peak %.1f MB), %.0f status writes, %d EdgeX requests.",
			a.BridgeCores, a.BridgeRSSMB, a.BridgePeakRSSMB, a.BridgeStatusWrites, total(a.EdgeXRequests))
	}
	if c := p.Alone.Cluster; c != nil {
		fmt.Fprintf(&b, " API server alone: %.2f cores, %.0f MB, %.0f watches, %.2f watch events per Device write; %s.", c.APIServerCores, c.APIServerRSSMB, c.WatchesTotal, c.WatchEventsPerWrite, c.GC.describe())
	}
	b.WriteString("\n")
	if st := p.Steady; st != nil {
		c := st.Cluster
		fmt.Fprintf(&b, "  Side by side, steady (%s): %.0f readings lost; API server %.0f MB RSS, etcd %.0f MB, %s Devices stored (%.0f bytes each by the API server's estimate), etcd database %.0f MB; %s. Per bridge (cores, RSS MB, readings received/published, status writes):",
			secs(st.WindowSeconds), st.ReadingsLost, c.APIServerRSSMB, c.EtcdRSSMB, count(int(c.DeviceObjects)), perObject(c.DeviceBytes, c.DeviceObjects), mb(int64(c.StorageBytes)), c.GC.describe())
		for _, br := range st.Bridges {
			fmt.Fprintf(&b, " %s %.4f, %.1f, %.0f/%d, %.0f;", br.Pool, br.Cores, br.RSSMB, br.ReadingsReceived, br.ReadingsPublished, br.StatusWrites)
		}
		b.WriteString("\n")
	}
	if imp := p.Import; imp != nil {
		b.WriteString("  Import per pool:")
		for _, name := range slices.Sorted(maps.Keys(imp.PoolSeconds)) {
			fmt.Fprintf(&b, " %s %s;", name, secs(imp.PoolSeconds[name]))
		}
		fmt.Fprintf(&b, " API writes %s.\n", formatCounts(imp.APIWrites))
	}
	if c := p.Commands; c != nil {
		fmt.Fprintf(&b, "  Commands side by side: %d in %s (%d calls failed, generator at most %s late, other processes %.2f cores); "+
			"patch to the benchmark's own watch showing it: %s; the bridges' own send-to-answer mean %s; API server %.2f cores, %s; "+
			"API server time per write %s; Device watch event dispatch, mean by stage, %s; %.0f watchers closed as too slow; %s; %s.\n",
			c.Commands, secs(c.WindowSeconds), c.FailedCalls, ms(c.MaxLateMs), c.OtherCores, describeLatency(c.SeenByWatch),
			ms(c.BridgeCommandMeanMs), c.Cluster.APIServerCores, c.Cluster.Machine.describe(),
			formatMeans(c.Cluster.WriteMs, nil), formatMeans(c.Cluster.DeviceDispatchMs, nil), c.Cluster.TerminatedWatchers, c.Cluster.GC.describe(),
			describeSlowBySecond(c.SlowBySecond))
	}
	return b.String()
}

// describeSlowBySecond says when the slow commands were sent.
func describeSlowBySecond(bySecond map[int]int) string {
	if len(bySecond) == 0 {
		return fmt.Sprintf("no command over %s", ms(float64(slowCommand.Milliseconds())))
	}
	var parts []string
	total := 0
	for _, s := range slices.Sorted(maps.Keys(bySecond)) {
		parts = append(parts, fmt.Sprintf("s%d: %d", s, bySecond[s]))
		total += bySecond[s]
	}
	return fmt.Sprintf("%d commands over %s, by the second of the window they were sent in {%s}", total, ms(float64(slowCommand.Milliseconds())), strings.Join(parts, ", "))
}

func perObject(bytes, objects float64) float64 {
	if objects <= 0 {
		return 0
	}
	return bytes / objects
}
