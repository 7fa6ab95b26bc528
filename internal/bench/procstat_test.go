package bench

import (
	"math"
	"os"
	"testing"
	"time"
)

// A /proc/<pid>/stat line of a process whose name holds a space and a
// parenthesis, which is why fields are counted from the last ')'.
const statLine = "4242 (dev (ctl) x) S 4100 4242 4100 0 -1 4194560 2100 0 0 0 1234 566 0 0 20 0 31 0 987654 1500000000 23000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0"

const statusText = `Name:	devicecontroll
Umask:	0022
State:	S (sleeping)
VmPeak:	 2200000 kB
VmHWM:	  130048 kB
VmRSS:	   92160 kB
Threads:	31
`

func TestReadingAProcessFromProc(t *testing.T) {
	cpu, err := parseStatCPU([]byte(statLine))
	if err != nil {
		t.Fatal(err)
	}
	// utime 1234 + stime 566 ticks of 1/100 s.
	if want := 18 * time.Second; cpu != want {
		t.Errorf("cpu = %s, want %s", cpu, want)
	}
	name, parent, ok := parseStatParent([]byte(statLine))
	if !ok || name != "dev (ctl) x" || parent != 4100 {
		t.Errorf("name %q parent %d ok %v", name, parent, ok)
	}
	rss, hwm := parseStatusMemory([]byte(statusText))
	if rss != 92160<<10 || hwm != 130048<<10 {
		t.Errorf("rss %d hwm %d", rss, hwm)
	}
}

func TestBrokenStatLinesAreRefused(t *testing.T) {
	for _, line := range []string{"", "4242 no parenthesis S 1", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 a b"} {
		if _, err := parseStatCPU([]byte(line)); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

func TestSamplingThisProcess(t *testing.T) {
	a, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU so that the second sample differs.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	b, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.rss <= 0 || b.hwm < b.rss {
		t.Errorf("memory: rss %d, hwm %d", b.rss, b.hwm)
	}
	if c := cores(a, b); c < 0 || c > 64 {
		t.Errorf("cores between samples = %v", c)
	}
	if _, err := sampleProc(-1); err == nil {
		t.Error("sampled a process that cannot exist")
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add(statLine)
	f.Add(statusText)
	f.Add("1 (a) R")
	f.Fuzz(func(t *testing.T, text string) {
		if cpu, err := parseStatCPU([]byte(text)); err == nil && cpu < 0 {
			t.Fatalf("negative CPU time %s from %q", cpu, text)
		}
		parseStatParent([]byte(text))
		parseStatusMemory([]byte(text))
	})
}

func TestHowBusyTheMachineWas(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	start := "cpu  1000 0 500 8000 100 0 50 0 300 0\ncpu0 500 0 250 4000 50 0 25 0 150 0\n"
	cases := []struct {
		name, end     string
		share         float64
		saturated     bool
		refusesTheEnd bool
	}{
		{name: "idle", end: "cpu  1000 0 500 9000 100 0 50 0 300 0\n", share: 0},
		{name: "half busy", end: "cpu  1500 0 500 8600 0 0 50 0 300 0\n", share: 0.5},
		{name: "saturated", end: "cpu  1900 0 500 8000 150 0 50 50 300 0\n", share: 950.0 / 1000, saturated: true},
		{name: "no cpu line", end: "intr 1 2 3\n", refusesTheEnd: true},
		{name: "garbled counter", end: "cpu  1000 0 x 8000 100 0 50 0 0 0\n", refusesTheEnd: true},
	}
	from, err := parseMachineCPU([]byte(start))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			to, err := parseMachineCPU([]byte(tc.end))
			if tc.refusesTheEnd {
				if err == nil {
					t.Fatalf("%q parsed", tc.end)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := machineBetween(from, to)
			if math.Abs(w.BusyShare-tc.share) > 1e-9 || w.Saturated != tc.saturated {
				t.Errorf("busy share %.3f saturated %v, want %.3f %v", w.BusyShare, w.Saturated, tc.share, tc.saturated)
			}
		})
	}
}
