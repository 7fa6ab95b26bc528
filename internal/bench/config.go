package bench

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is one benchmark run's settings. The full run follows the issue's
// numbers; -small shortens every window so that about 1,000 devices finish
// in under two minutes, and says so in the output.
type config struct {
	devices int
	small   bool
	out     string

	bridgeBin  string
	bridgeArgs []string
	kubeQPS    float64
	kubeBurst  int
	pprof      bool

	statusInterval time.Duration
	resyncPeriod   time.Duration

	physicalWorkers int

	// opRate is the rate of edge and cloud changes in the latency phases,
	// latencyWindow how long each phase makes them.
	opRate        float64
	latencyWindow time.Duration
	// commandRate and commandWindow drive the command phases.
	commandRate   float64
	commandWindow time.Duration

	telemetryInterval time.Duration
	steadyWindow      time.Duration
	growthWindow      time.Duration
	// changingShare is the share of devices whose values change at every
	// event; the others report the same values each time.
	changingShare float64
	// readingsPerEvent is how many of its profile's resources a device
	// reports in each event.
	readingsPerEvent int

	probeWindow      time.Duration
	throughputWindow time.Duration
	startRate        float64

	// pools bridges, one per pool of poolDevices devices, run side by side
	// against the one API server in row 9; 0 takes the mode's default.
	pools, poolDevices int
	// poolStatusWriteRate is each row-9 bridge's --status-write-rate: the
	// pool's share of the API server's telemetry status writes, as an
	// operator sets it for many pools on one API server (0: none).
	poolStatusWriteRate float64

	// rows are the table rows to measure; empty measures them all.
	rows rowSet

	timeout time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseConfig(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	devices := envInt("BENCH_DEVICES", 10000)
	fs.IntVar(&c.devices, "devices", devices, "devices in the pool (default $BENCH_DEVICES, else 10000)")
	fs.BoolVar(&c.small, "small", false, "short windows, for about 1,000 devices in under two minutes")
	fs.StringVar(&c.out, "out", "bench", "directory for results.json, results.md, latency.svg, logs and profiles")
	fs.StringVar(&c.bridgeBin, "bridge", defaultBridgeBin(), "the devicecontroller binary to measure")
	var extra stringList
	fs.Var(&extra, "bridge-arg", "extra flag for the bridge, such as --workers=32 (repeatable)")
	fs.Float64Var(&c.kubeQPS, "kube-api-qps", 1000, "the bridge's --kube-api-qps (its default is 1000)")
	fs.IntVar(&c.kubeBurst, "kube-api-burst", 2000, "the bridge's --kube-api-burst (its default is 2000)")
	fs.BoolVar(&c.pprof, "pprof", false, "serve the bridge's pprof and save CPU and heap profiles of each phase in -out")
	fs.DurationVar(&c.statusInterval, "status-interval", 5*time.Second, "the bridge's --status-interval (coalescing interval)")
	fs.DurationVar(&c.resyncPeriod, "resync-period", 30*time.Minute, "the bridge's --resync-period; longer than the run, so that steady state sees no resync")
	fs.IntVar(&c.physicalWorkers, "physical-workers", 32, "parallel requests of the physical-limit client")
	fs.Float64Var(&c.opRate, "op-rate", 50, "edge and cloud changes per second in the latency phases")
	fs.Float64Var(&c.commandRate, "command-rate", 20, "desired-value patches per second in the command phases")
	fs.DurationVar(&c.telemetryInterval, "telemetry-interval", 10*time.Second, "how often each device sends an event in steady state")
	fs.Float64Var(&c.changingShare, "changing-share", 0.5, "share of devices whose values change at every event")
	fs.Float64Var(&c.startRate, "start-rate", throughputTarget/2, "readings per second of the first throughput and transport probe (half the 40,000 target: lower rates tell nothing)")
	fs.IntVar(&c.readingsPerEvent, "readings-per-event", maxReadingsPerEvent,
		fmt.Sprintf("readings in each telemetry event, 1 to %d: an autoEvent reading a device command of that many resources", maxReadingsPerEvent))
	fs.IntVar(&c.pools, "pools", 0, "row 9: bridges side by side against one API server, one per pool (default 20)")
	fs.IntVar(&c.poolDevices, "pool-devices", 0, "row 9: devices in each of those pools (default 500, or 50 with -small)")
	fs.Float64Var(&c.poolStatusWriteRate, "pool-status-write-rate", 1,
		"row 9: each pool's bridge's --status-write-rate, as README's \"Many pools on one API server\" sizes it: 20 telemetry status writes a second for the API server of a 2-CPU machine, shared by 20 pools (0: no budget, the bridge's default)")
	fs.DurationVar(&c.timeout, "timeout", 45*time.Minute, "the whole run stops after this")
	fs.Func("only", "measure only these rows, comma-separated, such as 7 or 3,4 (5 is 5a and 5b, 6 is 6a to 6d, 9 is 9a to 9e); "+
		"what a row needs runs too (the main pool's import for 3 to 7, row 1 for 2, row 4's managed devices for 5, row 6 for 8), "+
		"and rows not measured say so", func(v string) error {
		rows, err := parseRows(v)
		c.rows = rows
		return err
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.bridgeArgs = extra
	c.scaleWindows()
	return c, c.validate()
}

// scaleWindows sets the phase windows: the for a full run, short
// ones for -small.
func (c *config) scaleWindows() {
	if c.pools == 0 {
		c.pools = 20
	}
	if c.poolDevices == 0 {
		c.poolDevices = 500
		if c.small {
			c.poolDevices = 50
		}
	}
	if c.small {
		c.latencyWindow, c.commandWindow = 5*time.Second, 4*time.Second
		c.steadyWindow, c.growthWindow = 15*time.Second, 5*time.Second
		c.probeWindow, c.throughputWindow = 2*time.Second, 5*time.Second
		return
	}
	c.latencyWindow, c.commandWindow = 20*time.Second, 15*time.Second
	c.steadyWindow, c.growthWindow = 2*time.Minute, 30*time.Second
	c.probeWindow, c.throughputWindow = 4*time.Second, 30*time.Second
}

func (c *config) validate() error {
	var errs []error
	if c.devices < 30 {
		errs = append(errs, fmt.Errorf("-devices %d: at least 30 are needed", c.devices))
	}
	if c.pools < 2 {
		errs = append(errs, fmt.Errorf("-pools %d: row 9 needs at least 2", c.pools))
	}
	if c.poolDevices < 10 {
		errs = append(errs, fmt.Errorf("-pool-devices %d: at least 10 are needed", c.poolDevices))
	}
	if c.poolStatusWriteRate < 0 {
		errs = append(errs, fmt.Errorf("-pool-status-write-rate %g: 0 (no budget) or more", c.poolStatusWriteRate))
	}
	if c.changingShare < 0 || c.changingShare > 1 {
		errs = append(errs, fmt.Errorf("-changing-share %v is not between 0 and 1", c.changingShare))
	}
	if c.readingsPerEvent < 1 || c.readingsPerEvent > maxReadingsPerEvent {
		errs = append(errs, fmt.Errorf("-readings-per-event %d is not between 1 and %d", c.readingsPerEvent, maxReadingsPerEvent))
	}
	if c.opRate <= 0 || c.commandRate <= 0 || c.startRate <= 0 {
		errs = append(errs, errors.New("rates must be positive"))
	}
	if _, err := os.Stat(c.bridgeBin); err != nil {
		errs = append(errs, fmt.Errorf("bridge binary: %w (run make build)", err))
	}
	return errors.Join(errs...)
}

// rowSet is a set of table rows by number ("5" stands for 5a and 5b).
type rowSet map[string]bool

// allRows are the rows -only accepts.
var allRows = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}

// rowNeeds are the rows whose results another row cannot do without.
var rowNeeds = map[string][]string{
	"2": {"1"}, // the import is judged against the physical limit
	"5": {"4"}, // commands go to the managed devices row 4 creates
	"8": {"6"}, // the main pool is the largest point, row 6 its cost
}

func parseRows(list string) (rowSet, error) {
	rows := rowSet{}
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if !slices.Contains(allRows, id) {
			return nil, fmt.Errorf("-only: no row %q (rows are %s)", id, strings.Join(allRows, ", "))
		}
		rows[id] = true
		for _, need := range rowNeeds[id] {
			rows[need] = true
		}
	}
	return rows, nil
}

func (s rowSet) sorted() []string {
	var ids []string
	for _, id := range allRows {
		if s[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// measures reports whether the run measures any of the rows.
func (c *config) measures(ids ...string) bool {
	if len(c.rows) == 0 {
		return true
	}
	for _, id := range ids {
		if c.rows[id] {
			return true
		}
	}
	return false
}

// growthSizes are the smaller pools measured for cost growth; the main pool
// is the largest point.
func (c *config) growthSizes() []int {
	return []int{c.devices / 10, c.devices / 2}
}

func (c *config) logDir() string { return filepath.Join(c.out, "logs") }

func (c *config) mode() string {
	if c.small {
		return "small"
	}
	return "full"
}

// defaultBridgeBin is devicecontroller beside this binary, where make build
// puts both.
func defaultBridgeBin() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin/devicecontroller"
	}
	return filepath.Join(filepath.Dir(exe), "devicecontroller")
}

func envInt(key string, fallback int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return fallback
}
