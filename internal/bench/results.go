package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured; results.json holds it whole and
// results.md the table and the details a reader needs to trust it.
type results struct {
	Mode            string      `json:"mode"`
	Devices         int         `json:"devices"`
	StartedAt       time.Time   `json:"startedAt"`
	DurationSeconds float64     `json:"durationSeconds"`
	GoVersion       string      `json:"goVersion"`
	Machine         machineLoad `json:"machine"`
	Settings        settings    `json:"settings"`

	Physical    *physicalResult   `json:"physicalLimit,omitempty"`
	Import      *importResult     `json:"import,omitempty"`
	EdgeToCloud *latencyPhase     `json:"edgeToCloud,omitempty"`
	CloudToEdge *latencyPhase     `json:"cloudToEdge,omitempty"`
	Commands    []commandPhase    `json:"commands,omitempty"`
	Restart     *restartResult    `json:"restart,omitempty"`
	Steady      *steadyResult     `json:"steady,omitempty"`
	Throughput  *throughputResult `json:"throughput,omitempty"`
	Transport   *transportResult  `json:"transportLimit,omitempty"`
	Growth      *growthResult     `json:"growth,omitempty"`
	Pools       *poolsResult      `json:"pools,omitempty"`

	Rows []row `json:"rows"`
	// Errors are phases that could not be measured; their rows say so.
	Errors []string `json:"errors,omitempty"`
}

// settings are the knobs a reader needs to interpret the figures.
type settings struct {
	BridgeBinary string `json:"bridgeBinary"`
	// ExtraFlags were given with -bridge-arg; BridgeCommand is the main
	// pool's bridge's whole command line.
	ExtraFlags        []string `json:"extraFlags,omitempty"`
	BridgeCommand     []string `json:"bridgeCommand,omitempty"`
	KubeAPIQPS        float64  `json:"kubeApiQps"`
	KubeAPIBurst      int      `json:"kubeApiBurst"`
	StatusInterval    string   `json:"statusInterval"`
	ResyncPeriod      string   `json:"resyncPeriod"`
	TelemetryInterval string   `json:"telemetryInterval"`
	ChangingShare     float64  `json:"changingShare"`
	LatencyWindow     string   `json:"latencyWindow"`
	CommandWindow     string   `json:"commandWindow"`
	SteadyWindow      string   `json:"steadyWindow"`
	GrowthWindow      string   `json:"growthWindow"`
	ThroughputWindow  string   `json:"throughputWindow"`
	// EtcdDataDir is the filesystem under etcd's data: tmpfs or $TMPDIR.
	EtcdDataDir string `json:"etcdDataDir"`
	Profiling   bool   `json:"profiling"`
	// Only are the rows -only asked for; empty when all were.
	Only []string `json:"only,omitempty"`
}

// restartResult is the bridge restarted at full size (to switch command
// transport): how long until it is ready and idle, and what it wrote.
type restartResult struct {
	Transport     string             `json:"transport"`
	ReadySeconds  float64            `json:"readySeconds"`
	IdleSeconds   float64            `json:"idleSeconds"`
	APIWrites     map[string]float64 `json:"apiWrites"`
	EdgeXRequests map[string]int64   `json:"edgexRequests"`
}

// row is one line of the table.
type row struct {
	ID       string `json:"id"`
	Measure  string `json:"measure"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Result   string `json:"result"`
}

const (
	pass      = "PASS"
	fail      = "FAIL"
	reference = "reference"
	missing   = "not measured"
)

func verdict(ok bool) string {
	if ok {
		return pass
	}
	return fail
}

func newResults(cfg *config) *results {
	return &results{
		Mode: cfg.mode(), Devices: cfg.devices, StartedAt: time.Now(), GoVersion: runtime.Version(),
		Settings: settings{
			BridgeBinary: cfg.bridgeBin, ExtraFlags: cfg.bridgeArgs, KubeAPIQPS: cfg.kubeQPS, KubeAPIBurst: cfg.kubeBurst,
			StatusInterval: cfg.statusInterval.String(), ResyncPeriod: cfg.resyncPeriod.String(),
			TelemetryInterval: cfg.telemetryInterval.String(), ChangingShare: cfg.changingShare,
			LatencyWindow: cfg.latencyWindow.String(), CommandWindow: cfg.commandWindow.String(),
			SteadyWindow: cfg.steadyWindow.String(), GrowthWindow: cfg.growthWindow.String(),
			ThroughputWindow: cfg.throughputWindow.String(), Profiling: cfg.pprof, Only: cfg.rows.sorted(),
		},
	}
}

// evaluate builds the table from what was measured.
func (r *results) evaluate() {
	r.Rows = nil
	r.Rows = append(r.Rows, r.physicalRow(), r.importRow())
	r.Rows = append(r.Rows, latencyRow("3", "Edge → cloud latency (add, update, delete at the edge)", r.EdgeToCloud))
	r.Rows = append(r.Rows, latencyRow("4", "Cloud → edge latency (create, update in the cloud)", r.CloudToEdge))
	for _, transport := range []string{"rest", "mqtt"} {
		r.Rows = append(r.Rows, r.commandRow(transport))
	}
	r.Rows = append(r.Rows, r.steadyRows()...)
	r.Rows = append(r.Rows, r.throughputRow(), r.growthRow())
	r.Rows = append(r.Rows, r.poolsRows()...)
	r.markSkipped()
}

// markSkipped says of each row -only left out that it was not asked for,
// rather than that it failed.
func (r *results) markSkipped() {
	if len(r.Settings.Only) == 0 {
		return
	}
	for i, rw := range r.Rows {
		if !slices.Contains(r.Settings.Only, rw.ID[:1]) {
			r.Rows[i].Measured, r.Rows[i].Result = "not asked for (-only)", "—"
		}
	}
}

func (r *results) physicalRow() row {
	out := row{ID: "1", Measure: fmt.Sprintf("Physical limit: create %s Devices + %s status writes, no bridge", count(r.Devices), count(r.Devices)),
		Target: "—", Result: reference, Measured: missing}
	if p := r.Physical; p != nil {
		out.Measured = fmt.Sprintf("%s (%.0f creates/s, %.0f status writes/s, %d in flight); one write alone: p50 %s, p99 %s",
			secs(p.TotalSeconds), p.CreatesPerSecond, p.StatusWritesPerSec, p.Workers, ms(p.WriteLatency.P50), ms(p.WriteLatency.P99))
	}
	return out
}

// maxImportRatio is how much longer than the API server alone (row 1) an
// import may take. Both make the same two writes per device, a create and
// a status write, so what is left to the bridge is its pipeline: reading
// EdgeX, and keeping the API server as busy as row 1's client does.
const maxImportRatio = 1.3

func (r *results) importRow() row {
	out := row{ID: "2", Measure: fmt.Sprintf("Import %s edge devices (3 services, 3 profiles) to synced, complete CRs", count(r.Devices)),
		Target: fmt.Sprintf("≤ %.1f× physical limit", maxImportRatio), Result: fail, Measured: missing}
	if r.Physical != nil {
		out.Target = fmt.Sprintf("≤ %.1f× physical (≤ %s)", maxImportRatio, secs(maxImportRatio*r.Physical.TotalSeconds))
	}
	if i := r.Import; i != nil && r.Physical != nil {
		out.Measured = fmt.Sprintf("%s = %.1f× physical (ready after %s; %.1f API writes/device; bridge %.2f cores; then %s managedFields emptied by %s)",
			secs(i.Seconds), i.RatioToPhysical, secs(i.ReadySeconds), i.APIWritesPerDevice, i.BridgeCores,
			count(int(i.ManagedFieldsEmptied)), secs(i.EmptiedSeconds))
		if i.Completed < i.Devices {
			out.Measured = fmt.Sprintf("incomplete: %d of %d after %s", i.Completed, i.Devices, secs(i.Seconds))
		}
		out.Result = verdict(i.Completed == i.Devices && i.RatioToPhysical <= maxImportRatio)
	}
	return out
}

func latencyRow(id, measure string, ph *latencyPhase) row {
	out := row{ID: id, Measure: measure, Target: "p99 ≤ 500 ms", Result: fail, Measured: missing}
	if ph == nil {
		return out
	}
	out.Measure += fmt.Sprintf(", %.0f/s", ph.RatePerSecond)
	out.Measured = describeLatency(ph.All)
	out.Result = verdict(ph.All.Count > 0 && ph.All.Missed == 0 && ph.All.P99 <= 500)
	return out
}

func (r *results) commandRow(transport string) row {
	id := map[string]string{"rest": "5a", "mqtt": "5b"}[transport]
	out := row{ID: id, Measure: fmt.Sprintf("Command latency over %s: desiredValue patched → device written, pool at full size", strings.ToUpper(transport)),
		Target: "p50 ≤ 50 ms, p99 ≤ 200 ms", Result: fail, Measured: missing}
	for _, c := range r.Commands {
		if c.Transport != transport {
			continue
		}
		out.Measured = describeLatency(c.Latency)
		out.Result = verdict(c.Latency.Count > 0 && c.Latency.Missed == 0 && c.Latency.P50 <= 50 && c.Latency.P99 <= 200)
	}
	return out
}

// maxSteadyRSSMB is row 6d's target: the bridge's resident memory at rest
// with 10,000 devices (issue 19).
const maxSteadyRSSMB = 120.0

func (r *results) steadyRows() []row {
	s := r.Steady
	rows := []row{
		{ID: "6a", Measure: "Steady state: EdgeX REST calls per minute (no resync in the window)", Target: wipeProbeTarget, Result: fail, Measured: missing},
		{ID: "6b", Measure: "Steady state: API server writes per minute", Target: "≤ 1 per device per status interval; 0 for unchanged devices", Result: fail, Measured: missing},
		{ID: "6c", Measure: "Steady state: bridge CPU", Target: "≤ 0.5 core", Result: fail, Measured: missing},
		{ID: "6d", Measure: "Steady state: bridge RSS", Target: fmt.Sprintf("≤ %.0f MB at 10,000 devices", maxSteadyRSSMB), Result: fail, Measured: missing},
	}
	if s == nil {
		return rows
	}
	for i := range rows {
		rows[i].Measure += fmt.Sprintf(" (%s devices, 1 event/%s each, %s)", count(s.Devices), secs(s.TelemetryIntervalSeconds), secs(s.WindowSeconds))
	}
	probes, others := wipeProbeCalls(s.EdgeXRequests)
	rows[0].Target = fmt.Sprintf("only the wipe probe's lists of one object, 1 per %d s (≤ %d in the window); 0 others", wipeProbeSeconds, wipeProbeBudget(s.WindowSeconds))
	rows[0].Measured = fmt.Sprintf("%.1f (%d calls: %d wipe-probe lists, %d others)", s.EdgeXRequestsPerMinute, total(s.EdgeXRequests), probes, others)
	rows[0].Result = verdict(others == 0 && probes <= wipeProbeBudget(s.WindowSeconds))
	rows[1].Target = fmt.Sprintf("≤ %s (1 per device per %s); 0 for unchanged devices", count(int(s.APIWritesBoundPerMinute)), secs(s.StatusIntervalSeconds))
	rows[1].Measured = fmt.Sprintf("%.0f (%s of %s devices change; writes seen: %d to changing, %d to unchanged devices, %d too soon)",
		s.APIWritesPerMinute, count(s.ChangingDevices), count(s.Devices), s.ChangingDeviceWrites, s.UnchangingDeviceWrites, s.WritesTooClose)
	rows[1].Result = verdict(s.APIWritesPerMinute <= s.APIWritesBoundPerMinute && s.UnchangingDeviceWrites == 0 && s.WritesTooClose == 0)
	rows[2].Measured = fmt.Sprintf("%.3f cores (API server %.2f, etcd %.2f)", s.BridgeCores, s.APIServerCores, s.EtcdCores)
	rows[2].Result = verdict(s.BridgeCores <= 0.5)
	rows[3].Measured = fmt.Sprintf("%.0f MB (peak %.0f MB)", s.BridgeRSSMB, s.BridgePeakRSSMB)
	rows[3].Result = verdict(s.BridgeRSSMB <= maxSteadyRSSMB)
	if r.Devices < 10000 {
		rows[3].Result += " (target is for 10,000)"
	}
	return rows
}

// The bridge's only steady-state EdgeX calls are its wipe probe's: a list
// of one object of one kind every 20 s (devicecontroller's default
// WipeCheckInterval), so that a wiped EdgeX, which announces nothing, is
// noticed between resyncs.
const (
	wipeProbeSeconds = 20
	wipeProbeTarget  = "only the wipe probe's lists of one object, 1 per 20 s; 0 others"
)

// wipeProbeCalls splits steady-state EdgeX calls into the probe's lists (no
// resync runs in the window, so every list is one) and the rest.
func wipeProbeCalls(requests map[string]int64) (probes, others int64) {
	for route, n := range requests {
		if strings.Contains(route, " GET ") && strings.HasSuffix(route, "/all") {
			probes += n
		} else {
			others += n
		}
	}
	return probes, others
}

// wipeProbeBudget is the most probe lists a window can hold: one per probe
// interval, and one more where the window's edges cut an interval.
func wipeProbeBudget(windowSeconds float64) int64 {
	return int64(math.Ceil(windowSeconds/wipeProbeSeconds)) + 1
}

// throughputTarget is row 7's target in readings a second: more than
// half of what mosquitto alone carries on the 2-core machine the table is
// measured on (73,000 to 85,000 readings/s).
const throughputTarget = 40000

func (r *results) throughputRow() row {
	out := row{ID: "7", Measure: fmt.Sprintf("Telemetry throughput: highest reading rate held with no loss and lag ≤ %s", secs(maxLag.Seconds())),
		Target: fmt.Sprintf("≥ %s readings/s", count(throughputTarget)), Result: fail, Measured: missing}
	t := r.Throughput
	if t == nil {
		return out
	}
	out.Measure += fmt.Sprintf(" for %s", r.Settings.ThroughputWindow)
	out.Measured = fmt.Sprintf("%s readings/s", count(int(t.ReadingsPerSecond)))
	if t.ReadingsPerEvent > 0 {
		each := fmt.Sprintf("%d readings", t.ReadingsPerEvent)
		if t.ReadingsPerEvent == 1 {
			each = "1 reading"
		}
		out.Measured += fmt.Sprintf(" = %s events/s of %s", count(int(t.ReadingsPerSecond/float64(t.ReadingsPerEvent))), each)
	}
	if n := len(t.Confirmations); n > 0 {
		c := t.Confirmations[n-1]
		out.Measured += fmt.Sprintf(" (bridge %.2f cores, %.0f status writes/s)", c.BridgeCores, c.StatusWritesPerS)
	}
	if t.GeneratorLimited {
		out.Measured = "≥ " + out.Measured + ", generator-limited"
	}
	if tr := r.Transport; tr != nil {
		out.Measured += fmt.Sprintf("; without the bridge, generator → mosquitto → counting subscriber: %s readings/s", count(int(tr.ReadingsPerSecond)))
	}
	out.Result = verdict(t.ReadingsPerSecond >= throughputTarget)
	return out
}

func (r *results) growthRow() row {
	out := row{ID: "8", Measure: "Cost growth: import time, RSS and steady CPU", Target: fmt.Sprintf("linear or better (exponent ≤ %.1f)", maxLinearExponent),
		Result: fail, Measured: missing}
	g := r.Growth
	if g == nil || len(g.Points) < 2 {
		return out
	}
	var sizes []string
	for _, p := range g.Points {
		sizes = append(sizes, count(p.Devices))
	}
	out.Measure += " at " + strings.Join(sizes, ", ") + " devices"
	out.Measured = fmt.Sprintf("per 1,000 devices: import +%.1f s (exp %s), RSS +%.1f MB (exp %s), CPU +%.3f cores (exp %s)",
		g.ImportSecondsPer1k, exp(g.ImportExponent), g.RSSMBPer1k, exp(g.RSSExponent), g.CoresPer1k, exp(g.CoresExponent))
	ok := true
	for _, e := range []*float64{g.ImportExponent, g.RSSExponent, g.CoresExponent} {
		if e != nil && *e > maxLinearExponent {
			ok = false
		}
	}
	out.Result = verdict(ok)
	return out
}

func describeLatency(s latencyStats) string {
	out := fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s (n=%d", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), s.Count)
	if s.Missed > 0 {
		out += fmt.Sprintf(", %d never arrived", s.Missed)
	}
	return out + ")"
}

func secs(s float64) string {
	switch {
	case s >= 100:
		return fmt.Sprintf("%.0f s", s)
	case s >= 10:
		return fmt.Sprintf("%.1f s", s)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func exp(e *float64) string {
	if e == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *e)
}

// count writes an integer with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// markdown renders the table and the context a reader needs.
func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## edgebridge benchmark: %s devices (%s run), %s\n\n", count(r.Devices), r.Mode, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %d CPUs, shared: other processes used %.2f cores on average during the run (%s); load average %s at start, %s at end. Run took %s.\n\n",
		r.Machine.CPUs, r.Machine.OtherCores, busiest(r.Machine.Busiest), r.Machine.LoadAverageStart, r.Machine.LoadAverageEnd, secs(r.DurationSeconds))
	fmt.Fprintf(&b, "Bridge: `bin/devicecontroller` as its own process, `--status-interval=%s --resync-period=%s --kube-api-qps=%g --kube-api-burst=%d`",
		r.Settings.StatusInterval, r.Settings.ResyncPeriod, r.Settings.KubeAPIQPS, r.Settings.KubeAPIBurst)
	if len(r.Settings.ExtraFlags) > 0 {
		fmt.Fprintf(&b, " `%s`", strings.Join(r.Settings.ExtraFlags, " "))
	}
	fmt.Fprintf(&b, "; real kube-apiserver + etcd (envtest, data in %s), mosquitto, EdgeX simulator, all on loopback.\n\n", r.Settings.EtcdDataDir)
	b.WriteString("| # | measure | target | measured | result |\n|---|---|---|---|---|\n")
	for _, rw := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rw.ID, rw.Measure, rw.Target, rw.Measured, rw.Result)
	}
	b.WriteString("\n")
	b.WriteString(r.details())
	if len(r.Errors) > 0 {
		b.WriteString("\nPhases that failed:\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

func busiest(procs []string) string {
	if len(procs) == 0 {
		return "none busy"
	}
	return "busiest: " + strings.Join(procs, ", ")
}

// details are the figures behind the table rows.
func (r *results) details() string {
	var b strings.Builder
	b.WriteString("How it was measured: latencies run from the cause (the simulator call or the API write) to the effect " +
		"(the benchmark's watch on Devices, core-metadata's system event, or the simulated device's write). " +
		"API server writes are the kube-apiserver's own `apiserver_request_total` (write verbs, leases excluded); " +
		"EdgeX REST calls are counted by the simulator; CPU and RSS come from /proc of the bridge process.\n\n")
	if i := r.Import; i != nil {
		fmt.Fprintf(&b, "- Import: first device complete after %s, EdgeX listed after %s; API writes %s; API reads %s; EdgeX requests %s; "+
			"API server %.2f cores, etcd %.2f cores, other processes %.2f cores; %.1f of the bridge's writes in flight on average; "+
			"its requests waited %s in all for its client-side rate limit.\n",
			secs(i.FirstDeviceSeconds), secs(i.ReadySeconds), formatCounts(i.APIWrites), formatCounts(i.APIReads), formatCounts(i.EdgeXRequests),
			i.APIServerCores, i.EtcdCores, i.OtherCores, i.WritesInFlight, secs(i.ClientThrottleSeconds))
	}
	for _, ph := range []struct {
		name string
		p    *latencyPhase
	}{{"Edge → cloud", r.EdgeToCloud}, {"Cloud → edge", r.CloudToEdge}} {
		if ph.p == nil {
			continue
		}
		fmt.Fprintf(&b, "- %s: %d changes in %s (generator at most %s late, %d calls failed, other processes %.2f cores):", ph.name, ph.p.Changes,
			secs(ph.p.WindowSeconds), ms(ph.p.MaxLateMs), ph.p.FailedCalls, ph.p.OtherCores)
		for _, name := range slices.Sorted(maps.Keys(ph.p.BySeries)) {
			fmt.Fprintf(&b, " %s %s;", name, describeLatency(ph.p.BySeries[name]))
		}
		if ph.p.SeenByWatch != nil {
			fmt.Fprintf(&b, " API write to the benchmark's own watch showing it: %s;", describeLatency(*ph.p.SeenByWatch))
		}
		if ph.p.Split != nil {
			fmt.Fprintf(&b, " where the time went: %s.", ph.p.Split)
		}
		b.WriteString("\n")
	}
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "- Commands over %s: %d to %d managed devices in %s; the bridge's own send-to-answer mean %s; other processes %.2f cores.\n",
			c.Transport, c.Commands, c.Targets, secs(c.WindowSeconds), ms(c.BridgeCommandMeanMs), c.OtherCores)
		if c.SeenByWatch != nil {
			fmt.Fprintf(&b, "  Patch to the benchmark's own watch showing it: %s.", describeLatency(*c.SeenByWatch))
		}
		if c.Split != nil {
			fmt.Fprintf(&b, " Where the time went: %s.", c.Split)
		}
		if c.SeenByWatch != nil || c.Split != nil {
			b.WriteString("\n")
		}
	}
	if rs := r.Restart; rs != nil {
		fmt.Fprintf(&b, "- Restart at full size (for --command-transport=%s): ready after %s, idle after %s; API writes %s; EdgeX requests %s.\n",
			rs.Transport, secs(rs.ReadySeconds), secs(rs.IdleSeconds), formatCounts(rs.APIWrites), formatCounts(rs.EdgeXRequests))
	}
	if s := r.Steady; s != nil {
		fmt.Fprintf(&b, "- Steady state: %s devices with telemetry (%s change at every event) plus %s without; %d events, %d readings published, %.0f received; "+
			"API writes %s; bridge status writes %.0f; EdgeX requests %s; other processes %.2f cores.\n",
			count(s.Devices), count(s.ChangingDevices), count(s.OtherDevices), s.EventsPublished, s.ReadingsPublished, s.ReadingsReceived,
			formatCounts(s.APIWrites), s.BridgeStatusWrites, formatCounts(s.EdgeXRequests), s.OtherCores)
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(&b, "- Throughput trials (%.0f%% of devices change at every event; readings/s requested → published over the window: result):",
			100*t.ChangingShare)
		for _, tr := range append(append([]throughputTrial(nil), t.Probes...), t.Confirmations...) {
			fmt.Fprintf(&b, " %s → %s over %s: %s, other processes %.2f cores;", count(int(tr.RequestedPerSecond)), count(int(tr.AchievedPerSecond)),
				secs(tr.WindowSeconds), tr.verdict(), tr.OtherCores)
		}
		b.WriteString("\n")
	}
	if tr := r.Transport; tr != nil {
		b.WriteString("- Transport limit (no bridge; the benchmark's generator publishing through mosquitto to a subscriber that only counts; readings/s requested → published, counted):")
		for _, t := range tr.Trials {
			fmt.Fprintf(&b, " %s → %s, %d of %d counted (generator %.2f cores, mosquitto %.2f cores, other processes %.2f cores);",
				count(int(t.RequestedPerSecond)), count(int(t.AchievedPerSecond)), t.Received, t.Published, t.GeneratorCores, t.BrokerCores, t.OtherCores)
		}
		b.WriteString("\n")
	}
	b.WriteString(r.poolsDetails())
	if g := r.Growth; g != nil {
		b.WriteString("- Growth points:")
		for _, p := range g.Points {
			fmt.Fprintf(&b, " %s devices: import %s, RSS %.0f MB, steady %.3f cores over %s;", count(p.Devices), secs(p.ImportSeconds),
				p.RSSMB, p.SteadyCores, secs(p.SteadySeconds))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func formatCounts[V int64 | float64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %v", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// write saves results.json, results.md and latency.svg in dir.
func (r *results) write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latency.svg"), []byte(r.chart()), 0o644)
}
