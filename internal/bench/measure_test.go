package bench

import (
	"context"
	"encoding/xml"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"

	"github.com/edgebridge/edgebridge/edgex/simulator"
)

func TestPercentilesAreNearestRank(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	cases := []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"median of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"p99 of ten values is the max", hundred[:10], 99, 10},
		{"p50 of two values is the lower", []float64{3, 7}, 50, 3},
		{"one value", []float64{42}, 90, 42},
		{"no values", nil, 50, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("percentile = %v, want %v", got, tc.want)
			}
		})
	}
}

// A cause whose effect never came is missed, not a fast sample; an effect
// nobody caused is ignored; a second effect of one cause counts once.
func TestProbeCountsEachCauseOnce(t *testing.T) {
	p := newProbe()
	p.cause("add/a", "add")
	p.cause("add/b", "add")
	p.cause("delete/c", "delete")
	at := time.Now().Add(120 * time.Millisecond)
	if !p.effect("add/a", at) {
		t.Fatal("effect of a pending cause not recorded")
	}
	if p.effect("add/a", at.Add(time.Second)) {
		t.Error("second effect of one cause recorded")
	}
	if p.effect("add/zzz", at) {
		t.Error("effect without a cause recorded")
	}
	p.effect("delete/c", at)
	adds := p.stats("add")
	if adds.Count != 1 || adds.Missed != 1 || adds.P50 < 100 || adds.P50 > 1000 {
		t.Errorf("add stats %+v, want one sample of about 120 ms and one missed", adds)
	}
	if all := p.stats(""); all.Count != 2 || all.Missed != 1 {
		t.Errorf("all stats %+v", all)
	}
	ctx := context.Background()
	if err := p.settle(ctx, 50*time.Millisecond); err == nil {
		t.Error("settled with add/b still pending")
	}
	go p.effect("add/b", time.Now())
	if err := p.settle(ctx, 10*time.Second); err != nil {
		t.Errorf("did not settle once the last effect came: %v", err)
	}
}

// The probe remembers when the slow effects' causes were made, and the
// details say in which second of the window they fell.
func TestSlowCommandsAreToldBySecond(t *testing.T) {
	p := newProbe()
	p.slowAfter = slowCommand
	p.cause("quick", "rest")
	p.cause("slow", "rest")
	now := time.Now()
	p.effect("quick", now.Add(10*time.Millisecond))
	p.effect("slow", now.Add(slowCommand+time.Second))
	if got := p.slowCauses(); len(got) != 1 || got[0].After(now) {
		t.Fatalf("slow causes %v, want the one slow command's patch time", got)
	}
	for _, tc := range []struct {
		bySecond map[int]int
		want     string
	}{
		{nil, "no command over 200 ms"},
		{map[int]int{12: 2, 6: 7}, "9 commands over 200 ms, by the second of the window they were sent in {s6: 7, s12: 2}"},
	} {
		if got := describeSlowBySecond(tc.bySecond); got != tc.want {
			t.Errorf("describeSlowBySecond(%v) = %q, want %q", tc.bySecond, got, tc.want)
		}
	}
}

func TestGrowthFit(t *testing.T) {
	sizes := []int{1000, 5000, 10000}
	cases := []struct {
		name      string
		cost      func(n float64) float64
		slope1k   float64
		exponent  float64
		superLine bool
	}{
		{"linear import time", func(n float64) float64 { return 2 + 0.01*n }, 10, 0.95, false},
		{"constant-plus-small memory", func(n float64) float64 { return 40 + 0.002*n }, 2, 0.2, false},
		{"quadratic cost", func(n float64) float64 { return n * n / 1e6 }, 11, 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pts []growthPoint
			for _, n := range sizes {
				pts = append(pts, growthPoint{Devices: n, ImportSeconds: tc.cost(float64(n)), RSSMB: 50, SteadyCores: 0.01 * float64(n) / 1000})
			}
			g := fitGrowth(pts)
			if math.Abs(g.ImportSecondsPer1k-tc.slope1k) > 0.5 {
				t.Errorf("slope per 1k = %v, want about %v", g.ImportSecondsPer1k, tc.slope1k)
			}
			if g.ImportExponent == nil || math.Abs(*g.ImportExponent-tc.exponent) > 0.25 {
				t.Errorf("exponent = %v, want about %v", exp(g.ImportExponent), tc.exponent)
			}
			row := (&results{Growth: &g}).growthRow()
			if want := verdict(!tc.superLine); row.Result != want {
				t.Errorf("row %+v, want %s", row, want)
			}
			if math.Abs(g.RSSMBPer1k) > 1e-9 || g.RSSExponent == nil || math.Abs(*g.RSSExponent) > 1e-9 {
				t.Errorf("flat RSS fitted as slope %v exponent %v", g.RSSMBPer1k, exp(g.RSSExponent))
			}
		})
	}
	if g := fitGrowth([]growthPoint{{Devices: 100, SteadyCores: 0}, {Devices: 500, SteadyCores: 0.1}}); g.CoresExponent != nil {
		t.Errorf("an exponent fitted through a zero cost: %v", *g.CoresExponent)
	}
}

// The table's verdicts follow the targets.
func TestVerdicts(t *testing.T) {
	physical := &physicalResult{TotalSeconds: 10}
	fast := latencyStats{Count: 100, P50: 20, P90: 40, P99: 150, Max: 300}
	cases := []struct {
		name string
		res  results
		id   string
		want string
	}{
		{"import within 1.3x", results{Devices: 10, Physical: physical, Import: &importResult{Devices: 10, Completed: 10, Seconds: 13, RatioToPhysical: 1.3}}, "2", pass},
		{"import beyond 1.3x", results{Devices: 10, Physical: physical, Import: &importResult{Devices: 10, Completed: 10, Seconds: 14, RatioToPhysical: 1.4}}, "2", fail},
		{"import incomplete", results{Devices: 10, Physical: physical, Import: &importResult{Devices: 10, Completed: 9, Seconds: 5, RatioToPhysical: 0.5}}, "2", fail},
		{"import not measured", results{Devices: 10, Physical: physical}, "2", fail},
		{"edge to cloud fast", results{EdgeToCloud: &latencyPhase{All: fast}}, "3", pass},
		{"edge to cloud lost one", results{EdgeToCloud: &latencyPhase{All: latencyStats{Count: 99, Missed: 1, P99: 100}}}, "3", fail},
		{"cloud to edge slow tail", results{CloudToEdge: &latencyPhase{All: latencyStats{Count: 100, P99: 501}}}, "4", fail},
		{"REST commands fast", results{Commands: []commandPhase{{Transport: "rest", Latency: fast}}}, "5a", pass},
		{"MQTT commands slow median", results{Commands: []commandPhase{{Transport: "mqtt", Latency: latencyStats{Count: 10, P50: 51, P99: 60}}}}, "5b", fail},
		{"steady without EdgeX calls", results{Steady: &steadyResult{Devices: 10}}, "6a", pass},
		{"steady with a REST call", results{Steady: &steadyResult{Devices: 10, EdgeXRequests: map[string]int64{"GET x": 1}}}, "6a", fail},
		{"steady with the wipe probe's lists", results{Steady: &steadyResult{Devices: 10, WindowSeconds: 120, EdgeXRequests: map[string]int64{
			"core-metadata GET /api/v3/device/all": 2, "core-metadata GET /api/v3/deviceprofile/all": 2, "core-metadata GET /api/v3/deviceservice/all": 3}}}, "6a", pass},
		{"steady with more lists than the probe makes", results{Steady: &steadyResult{Devices: 10, WindowSeconds: 120, EdgeXRequests: map[string]int64{
			"core-metadata GET /api/v3/device/all": 8}}}, "6a", fail},
		{"steady with a device read", results{Steady: &steadyResult{Devices: 10, WindowSeconds: 120, EdgeXRequests: map[string]int64{
			"core-metadata GET /api/v3/device/all": 2, "core-metadata GET /api/v3/device/name/{name}": 1}}}, "6a", fail},
		{"steady writes within bound", results{Steady: &steadyResult{Devices: 10, APIWritesPerMinute: 60, APIWritesBoundPerMinute: 120}}, "6b", pass},
		{"steady write to an unchanged device", results{Steady: &steadyResult{Devices: 10, APIWritesPerMinute: 60, APIWritesBoundPerMinute: 120, UnchangingDeviceWrites: 1}}, "6b", fail},
		{"steady writes too soon", results{Steady: &steadyResult{Devices: 10, APIWritesPerMinute: 60, APIWritesBoundPerMinute: 120, WritesTooClose: 3}}, "6b", fail},
		{"steady CPU over half a core", results{Steady: &steadyResult{Devices: 10, BridgeCores: 0.51}}, "6c", fail},
		{"RSS at 10k within 120 MB", results{Devices: 10000, Steady: &steadyResult{Devices: 10000, BridgeRSSMB: 120}}, "6d", pass},
		{"RSS at 10k over 120 MB", results{Devices: 10000, Steady: &steadyResult{Devices: 10000, BridgeRSSMB: 121}}, "6d", fail},
		{"throughput at target", results{Throughput: &throughputResult{ReadingsPerSecond: 40000}}, "7", pass},
		{"throughput below", results{Throughput: &throughputResult{ReadingsPerSecond: 39999}}, "7", fail},
		{"many pools cost as one alone", results{Pools: manyPools(50, 0.010, 52, 0.0105, 2)}, "9a", pass},
		{"many pools cost as one alone (CPU)", results{Pools: manyPools(50, 0.010, 52, 0.0105, 2)}, "9b", pass},
		{"a bridge among many pools holds more", results{Pools: manyPools(50, 0.010, 56, 0.010, 2)}, "9a", fail},
		{"a bridge among many pools works more", results{Pools: manyPools(50, 0.010, 50, 0.0115, 2)}, "9b", fail},
		{"each write reaches its own pool's watchers", results{Pools: manyPools(50, 0.010, 50, 0.010, 2.01)}, "9c", pass},
		{"writes reach every pool's watchers", results{Pools: manyPools(50, 0.010, 50, 0.010, 21)}, "9c", fail},
		{"commands among many pools fast", results{Pools: &poolsResult{Commands: &poolsCommandPhase{Latency: fast}}}, "9e", pass},
		{"commands among many pools slow", results{Pools: &poolsResult{Commands: &poolsCommandPhase{Latency: latencyStats{Count: 100, P50: 20, P99: 201}}}}, "9e", fail},
		{"many pools not measured", results{}, "9a", fail},
		{"a row -only left out", results{Settings: settings{Only: []string{"7"}}}, "6b", "—"},
		{"the row -only asked for", results{Settings: settings{Only: []string{"7"}}, Throughput: &throughputResult{ReadingsPerSecond: 39999}}, "7", fail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.evaluate()
			for _, r := range tc.res.Rows {
				if r.ID == tc.id {
					if r.Result != tc.want {
						t.Errorf("row %s: %+v, want %s", tc.id, r, tc.want)
					}
					return
				}
			}
			t.Fatalf("no row %s", tc.id)
		})
	}
}

// Row 9 is measured under whatever status write budget its bridges had,
// and a reader of the table must see which.
func TestManyPoolsRowsSayTheBudget(t *testing.T) {
	cases := []struct {
		rate float64
		want string
	}{
		{0, "no status write budget"},
		{1, "each with --status-write-rate=1)"},
		{2.5, "each with --status-write-rate=2.5)"},
	}
	for _, tc := range cases {
		p := manyPools(50, 0.010, 50, 0.010, 2)
		p.StatusWriteRate = tc.rate
		res := results{Pools: p}
		res.evaluate()
		for _, r := range res.Rows {
			if strings.HasPrefix(r.ID, "9") && !strings.Contains(r.Measure, tc.want) {
				t.Errorf("budget %g: row %s is %q, want it to say %q", tc.rate, r.ID, r.Measure, tc.want)
			}
		}
	}
}

// manyPools is row 9 with the pool alone at aloneRSS and aloneCores and
// the median bridge among many at rss and cores.
func manyPools(aloneRSS, aloneCores, rss, cores, eventsPerWrite float64) *poolsResult {
	return &poolsResult{
		Pools: 20, DevicesPerPool: 500,
		Alone: alonePool{Steady: &steadyResult{BridgeRSSMB: aloneRSS, BridgeCores: aloneCores, WindowSeconds: 120}},
		Steady: &poolsSteady{RSSP50: rss, RSSMax: rss, CoresP50: cores, CoresMax: cores, WindowSeconds: 120,
			Cluster: clusterWindow{DeviceWrites: 1000, WatchEventsPerWrite: eventsPerWrite}},
	}
}

func TestThroughputTrialJudgement(t *testing.T) {
	cases := []struct {
		name   string
		trial  throughputTrial
		passed bool
		keptUp bool
	}{
		{"everything arrived in time", throughputTrial{AchievedPerSecond: 9900, Published: 99000, Received: 99000, MaxLagSeconds: 0.3, DrainSeconds: 0.2}, true, true},
		{"readings lost", throughputTrial{AchievedPerSecond: 10000, Published: 100000, Received: 99990}, false, false},
		{"drops reported", throughputTrial{AchievedPerSecond: 10000, Published: 100000, Received: 100000, DropReports: 1}, false, false},
		{"fell too far behind", throughputTrial{AchievedPerSecond: 10000, Published: 100000, Received: 100000, MaxLagSeconds: 2.5}, false, false},
		{"slow to catch up", throughputTrial{AchievedPerSecond: 10000, Published: 100000, Received: 100000, DrainSeconds: 2.5}, false, false},
		{"the generator fell short", throughputTrial{AchievedPerSecond: 9000, Published: 90000, Received: 90000}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.trial.judge(10000)
			if tc.trial.Passed != tc.passed || tc.trial.keptUp() != tc.keptUp {
				t.Errorf("passed %v kept up %v (%s), want %v %v", tc.trial.Passed, tc.trial.keptUp(), tc.trial.Why, tc.passed, tc.keptUp)
			}
		})
	}
}

// The search settles on the highest rate a whole window held, whatever
// the probes that went beyond it found.
func TestThroughputSearch(t *testing.T) {
	upTo := func(limit float64) func(float64) float64 {
		return func(rate float64) float64 { return min(rate, limit) }
	}
	cases := []struct {
		name     string
		capacity float64
		// generator is what the generator publishes when asked for a rate.
		generator            func(rate float64) float64
		want                 float64
		wantGeneratorLimited bool
	}{
		{"the bridge is the limit", 30000, upTo(1e6), 30000, false},
		{"the limit between two probes", 26000, upTo(1e6), 25000, false},
		{"the bridge cannot take the first probe", 3000, upTo(1e6), 2500, false},
		{"the generator falls short of the first probe", 1e6, upTo(4000), 4000, true},
		{"the generator falls short above a rate already held", 1e6, upTo(30000), 30000, true},
		{"a busy generator falls below a rate already held", 1e6, func(rate float64) float64 {
			if rate > 20000 {
				return 17000
			}
			return rate
		}, 20000, false},
		{"a generator within 5% of a rate reaches it", 1e6, upTo(19500), 19500, false},
		{"the bridge falls behind a generator that also falls short", 26000, upTo(30500), 25250, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A bridge that ingests up to capacity readings/s.
			trial := func(rate float64) throughputTrial {
				published := tc.generator(rate)
				tr := throughputTrial{RequestedPerSecond: rate, AchievedPerSecond: published, Published: int64(published),
					Received: min(published, tc.capacity)}
				tr.judge(rate)
				return tr
			}
			var res throughputResult
			searchRates(context.Background(), 5000, &res, trial, trial)
			if res.ReadingsPerSecond != tc.want || res.GeneratorLimited != tc.wantGeneratorLimited {
				t.Errorf("found %.0f readings/s (generator-limited %v), want %.0f (%v); probes %v, holds %v",
					res.ReadingsPerSecond, res.GeneratorLimited, tc.want, tc.wantGeneratorLimited, rates(res.Probes), rates(res.Confirmations))
			}
		})
	}
}

func rates(trials []throughputTrial) []float64 {
	var out []float64
	for _, t := range trials {
		out = append(out, t.RequestedPerSecond)
	}
	return out
}

func TestChartIsWellFormedSVG(t *testing.T) {
	cases := []struct {
		name     string
		res      results
		polyline int
	}{
		{"nothing measured", results{}, 0},
		{"every series", results{
			EdgeToCloud: &latencyPhase{All: summarize([]time.Duration{5 * time.Millisecond, 80 * time.Millisecond, 2 * time.Second}, 0)},
			CloudToEdge: &latencyPhase{All: summarize([]time.Duration{30 * time.Millisecond}, 0)},
			Commands: []commandPhase{
				{Transport: "rest", Latency: summarize([]time.Duration{300 * time.Microsecond, 9 * time.Millisecond}, 0)},
				{Transport: "mqtt", Latency: summarize([]time.Duration{12 * time.Millisecond}, 0)},
			},
			Pools: &poolsResult{Pools: 20, Commands: &poolsCommandPhase{Latency: summarize([]time.Duration{15 * time.Millisecond}, 0)}},
		}, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svg := tc.res.chart()
			dec := xml.NewDecoder(strings.NewReader(svg))
			for {
				if _, err := dec.Token(); err != nil {
					if err.Error() != "EOF" {
						t.Fatalf("not well-formed XML: %v\n%s", err, svg)
					}
					break
				}
			}
			if n := strings.Count(svg, "<polyline"); n != tc.polyline {
				t.Errorf("%d lines drawn, want %d", n, tc.polyline)
			}
			if tc.polyline > 0 && !strings.Contains(svg, "target 500 ms") {
				t.Error("the 500 ms target is not drawn")
			}
		})
	}
}

func TestPaceRunsEveryActionOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	res := pace(context.Background(), 50, 1000, 4, func(_ context.Context, i int) {
		mu.Lock()
		seen[i]++
		mu.Unlock()
	})
	if res.Started != 50 || len(seen) != 50 {
		t.Fatalf("started %d, saw %d distinct actions", res.Started, len(seen))
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("action %d ran %d times", i, n)
		}
	}
	// 50 actions at 1000/s are due over 49 ms: the run cannot be shorter.
	if res.Elapsed < 49*time.Millisecond {
		t.Errorf("ran in %s, faster than its schedule", res.Elapsed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := pace(ctx, 1000, 1, 2, func(context.Context, int) {}); res.Started > 2 {
		t.Errorf("a cancelled run started %d actions", res.Started)
	}
}

// The fleet is valid EdgeX: the simulator, which validates with
// go-mod-core-contracts, takes it, and devices cover every service and
// profile.
// The rate a run published at is judged over its schedule, not over the
// time its last, slow action took to finish.
func TestPaceSpanLeavesOutTheLastActionsDuration(t *testing.T) {
	const work = 30 * time.Millisecond
	res := pace(context.Background(), 50, 1000, 50, func(context.Context, int) { time.Sleep(work) })
	if res.Span < 50*time.Millisecond {
		t.Errorf("span %s is shorter than the 50 ms schedule", res.Span)
	}
	if res.Span > res.Elapsed-work+time.Millisecond {
		t.Errorf("span %s includes the last action's %s (elapsed %s)", res.Span, work, res.Elapsed)
	}
}

func TestFleetIsValidEdgeX(t *testing.T) {
	sim := simulator.New(simulator.Options{})
	if err := seedFleet(sim, 18); err != nil {
		t.Fatal(err)
	}
	combos := map[[2]string]bool{}
	for _, d := range sim.Devices() {
		combos[[2]string{d.ServiceName, d.ProfileName}] = true
	}
	if len(sim.Services()) != 3 || len(sim.Profiles()) != 3 || len(sim.Devices()) != 18 || len(combos) != 9 {
		t.Errorf("%d services, %d profiles, %d devices, %d service/profile combinations",
			len(sim.Services()), len(sim.Profiles()), len(sim.Devices()), len(combos))
	}
	for _, spec := range fleetProfileSpecs {
		for _, changing := range []bool{true, false} {
			values := readings(spec.name, 7, changing)
			if len(values) != maxReadingsPerEvent {
				t.Errorf("%s: %d readings", spec.name, len(values))
			}
			for _, r := range spec.resources {
				if _, ok := values[r.name]; !ok {
					t.Errorf("%s: no reading for %s", spec.name, r.name)
				}
			}
		}
	}
}

func TestTelemetryValues(t *testing.T) {
	for _, spec := range fleetProfileSpecs {
		a, b := readings(spec.name, 1, true), readings(spec.name, 2, true)
		if equalMaps(a, b) {
			t.Errorf("%s: a changing device reported the same values twice: %v", spec.name, a)
		}
		if c, d := readings(spec.name, 1, false), readings(spec.name, 2, false); !equalMaps(c, d) {
			t.Errorf("%s: an unchanging device changed: %v then %v", spec.name, c, d)
		}
	}
	cases := []struct{ valueType, current string }{
		{common.ValueTypeBool, "true"}, {common.ValueTypeBool, "false"}, {common.ValueTypeBool, ""},
		{common.ValueTypeInt32, "10"}, {common.ValueTypeInt32, "999"}, {common.ValueTypeInt32, "1000"}, {common.ValueTypeInt32, ""},
	}
	for _, tc := range cases {
		next := nextCommandValue(tc.valueType, tc.current)
		if next == tc.current {
			t.Errorf("%s %q: next value is the same", tc.valueType, tc.current)
		}
		if n, err := strconv.Atoi(next); tc.valueType == common.ValueTypeInt32 && (err != nil || n < 1 || n > 1000) {
			t.Errorf("%s %q: next value %q is outside 1..1000", tc.valueType, tc.current, next)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCountHasThousandsSeparators(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 20000: "20,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// -only measures the rows asked for and what they cannot do without.
func TestOnlyRows(t *testing.T) {
	cases := []struct {
		flag    string
		want    []string
		wantErr bool
	}{
		{"7", []string{"7"}, false},
		{"3, 7", []string{"3", "7"}, false},
		{"2", []string{"1", "2"}, false},
		{"5", []string{"4", "5"}, false},
		{"8", []string{"6", "8"}, false},
		{"9", []string{"9"}, false},
		{"10", nil, true},
		{"5a", nil, true},
		{"", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			rows, err := parseRows(tc.flag)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if got := rows.sorted(); !slices.Equal(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
		})
	}
	all := &config{}
	if !all.measures("1") || !all.measures("8") {
		t.Error("without -only, a row is not measured")
	}
	only := &config{rows: rowSet{"7": true}}
	if only.measures("6") || !only.measures("6", "7") {
		t.Error("-only=7 measures the wrong rows")
	}
}

// Pools' command schedules are offset so that they interleave: no action
// of an offset schedule starts before its offset.
func TestPaceAfterStartsNoActionBeforeItsOffset(t *testing.T) {
	const offset = 40 * time.Millisecond
	begin := time.Now()
	var mu sync.Mutex
	var first time.Duration = -1
	res := paceAfter(context.Background(), offset, 3, 1000, 3, func(context.Context, int) {
		mu.Lock()
		if first < 0 {
			first = time.Since(begin)
		}
		mu.Unlock()
	})
	if res.Started != 3 {
		t.Fatalf("started %d of 3 actions", res.Started)
	}
	if first < offset {
		t.Errorf("the first action started after %s, before the %s offset", first, offset)
	}
	if res.MaxLate < 0 {
		t.Errorf("max lateness %s is negative", res.MaxLate)
	}
}
