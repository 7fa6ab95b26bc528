package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. The kernel
// reports them in USER_HZ, which is 100 on every Linux architecture.
const userHZ = 100

// procSample is what /proc says of one process at one moment.
type procSample struct {
	at time.Time
	// cpu is the user and system time the process used since it started,
	// all threads included.
	cpu time.Duration
	// rss is the resident set now, hwm its peak so far (bytes).
	rss, hwm int64
}

// sampleProc reads a process's CPU time and memory.
func sampleProc(pid int) (procSample, error) {
	now := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read stat of process %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read status of process %d: %w", pid, err)
	}
	rss, hwm := parseStatusMemory(status)
	return procSample{at: now, cpu: cpu, rss: rss, hwm: hwm}, nil
}

// parseStatCPU returns utime+stime from /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may hold spaces, so fields are counted
// from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat has no command name: %q", truncateText(string(stat), 80))
	}
	// After ')' come field 3 (state) onwards; utime is field 14, stime 15.
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat has %d fields after the command name, want at least 13", len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 32)
	stime, err2 := strconv.ParseUint(fields[12], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q are not numbers", fields[11], fields[12])
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

// parseStatusMemory returns VmRSS and VmHWM (bytes) from /proc/<pid>/status;
// a kernel thread has neither and gets zeros.
func parseStatusMemory(status []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// cores is the average CPU use between two samples, in cores.
func cores(from, to procSample) float64 {
	wall := to.at.Sub(from.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return (to.cpu - from.cpu).Seconds() / wall
}

// childProcesses finds the direct children of ppid by command name, such
// as the kube-apiserver and etcd envtest started.
func childProcesses(ppid int) map[string]int {
	out := map[string]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		name, parent, ok := parseStatParent(data)
		if ok && parent == ppid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			out[name] = pid
		}
	}
	return out
}

// parseStatParent returns the command name and parent pid from
// /proc/<pid>/stat.
func parseStatParent(stat []byte) (string, int, bool) {
	start, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if start < 0 || end < start {
		return "", 0, false
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return string(stat[start+1 : end]), ppid, err == nil
}

// machineLoad describes what else used the machine while the benchmark
// ran, since the figures are only as good as the machine was quiet.
type machineLoad struct {
	CPUs             int    `json:"cpus"`
	LoadAverageStart string `json:"loadAverageAtStart"`
	LoadAverageEnd   string `json:"loadAverageAtEnd"`
	// OtherCores is the CPU that processes outside the benchmark (other
	// users of the machine) used on average during the run.
	OtherCores float64  `json:"otherProcessesCores"`
	Busiest    []string `json:"busiestOtherProcesses"`
}

type processCPU struct {
	name   string
	parent int
	cpu    time.Duration
}

func allProcessCPU() map[int]processCPU {
	out := map[int]processCPU{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		name, parent, ok := parseStatParent(data)
		cpu, err := parseStatCPU(data)
		if !ok || err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		out[pid] = processCPU{name: name, parent: parent, cpu: cpu}
	}
	return out
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return strings.TrimSpace(string(data))
	}
	return strings.Join(fields[:3], " ")
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// loadMonitor samples, every few seconds, how much CPU processes outside
// the benchmark use (other users of this shared machine), so that each
// phase can say how quiet the machine was while it ran.
type loadMonitor struct {
	mu      sync.Mutex
	samples []loadSample
	byName  map[string]time.Duration
	stop    chan struct{}
	done    chan struct{}
}

type loadSample struct {
	at time.Time
	// others is the CPU time other processes used since the monitor
	// started.
	others time.Duration
}

func startLoadMonitor(interval time.Duration) *loadMonitor {
	m := &loadMonitor{byName: map[string]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{})}
	m.samples = []loadSample{{at: time.Now()}}
	go m.run(interval)
	return m
}

func (m *loadMonitor) run(interval time.Duration) {
	defer close(m.done)
	self := os.Getpid()
	prev := allProcessCPU()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		cur := allProcessCPU()
		var used time.Duration
		m.mu.Lock()
		for pid, c := range cur {
			if pid == self || c.parent == self {
				continue
			}
			// A process born since the last sample counts from zero.
			d := c.cpu - prev[pid].cpu
			if p, ok := prev[pid]; ok && p.name != c.name {
				d = c.cpu
			}
			if d > 0 {
				used += d
				m.byName[c.name] += d
			}
		}
		last := m.samples[len(m.samples)-1]
		m.samples = append(m.samples, loadSample{at: time.Now(), others: last.others + used})
		m.mu.Unlock()
		prev = cur
	}
}

// othersCores is the average CPU other processes used between from and to,
// from the samples nearest those times.
func (m *loadMonitor) othersCores(from, to time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, b := m.nearest(from), m.nearest(to)
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return (b.others - a.others).Seconds() / wall
}

func (m *loadMonitor) nearest(t time.Time) loadSample {
	best := m.samples[0]
	for _, s := range m.samples {
		if s.at.Sub(t).Abs() < best.at.Sub(t).Abs() {
			best = s
		}
	}
	return best
}

// busiest names the other processes that used the most CPU so far.
func (m *loadMonitor) busiest(limit int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	wall := m.samples[len(m.samples)-1].at.Sub(m.samples[0].at).Seconds()
	type busy struct {
		name string
		cpu  time.Duration
	}
	var list []busy
	for name, cpu := range m.byName {
		list = append(list, busy{name, cpu})
	}
	sortBy(list, func(b busy) float64 { return -b.cpu.Seconds() })
	var out []string
	for i, b := range list {
		if i == limit || wall <= 0 {
			break
		}
		out = append(out, fmt.Sprintf("%s %.2f cores", b.name, b.cpu.Seconds()/wall))
	}
	return out
}

func (m *loadMonitor) close() {
	close(m.stop)
	<-m.done
}

// machineCPU is the machine's CPU time from the first line of /proc/stat,
// in USER_HZ ticks: busy and all (busy plus idle and I/O wait).
type machineCPU struct {
	busy, all uint64
}

func sampleMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseMachineCPU(data)
}

// parseMachineCPU reads the "cpu" line of /proc/stat: user, nice, system,
// idle, iowait, irq, softirq, steal (guest time is already in user).
func parseMachineCPU(stat []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 9 || fields[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat does not start with a cpu line of 8 counters: %q", truncateText(string(line), 80))
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(fields[i+1], 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat cpu counter %d is %q, not a number", i+1, fields[i+1])
		}
		v[i] = n
	}
	idle := v[3] + v[4]
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return machineCPU{busy: busy, all: busy + idle}, nil
}

// machineWindow is how busy the whole machine was over a window.
type machineWindow struct {
	// BusyShare is the share of all CPUs' time that was busy, 0 to 1.
	BusyShare float64 `json:"busyShare"`
	// Saturated says the CPUs were busy nearly all the time, so that
	// every process waited for a CPU and latencies include that wait.
	Saturated bool `json:"saturated"`
}

// saturatedShare is the busy share above which the machine counts as
// CPU-saturated.
const saturatedShare = 0.9

func machineBetween(from, to machineCPU) machineWindow {
	if to.all <= from.all {
		return machineWindow{}
	}
	share := float64(to.busy-from.busy) / float64(to.all-from.all)
	return machineWindow{BusyShare: share, Saturated: share >= saturatedShare}
}
