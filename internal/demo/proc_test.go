package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// proc identifies one process for its whole life: a pid, once its process
// is gone, may be reused, but not with the same start time.
type proc struct {
	pid   int
	comm  string
	start string
}

func (p proc) String() string { return fmt.Sprintf("%s (pid %d)", p.comm, p.pid) }

// stat is what /proc/<pid>/stat says of a process.
type stat struct {
	proc
	ppid  int
	state string
}

func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	// The command name is in parentheses and may itself hold spaces or
	// parentheses; the fields after the last ')' start with the state.
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return stat{}, fmt.Errorf("pid %d: unreadable stat %q", pid, s)
	}
	fields := strings.Fields(s[closing+1:])
	const startTimeField = 22 - 3 // field 22 of stat, counted after pid and comm
	if len(fields) <= startTimeField {
		return stat{}, fmt.Errorf("pid %d: short stat %q", pid, s)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return stat{}, err
	}
	return stat{proc: proc{pid: pid, comm: s[open+1 : closing], start: fields[startTimeField]}, ppid: ppid, state: fields[0]}, nil
}

// descendants lists every process below root, children of children
// included.
func descendants(root int) ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // exited while we looked
		}
		children[st.ppid] = append(children[st.ppid], st)
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c.proc)
			queue = append(queue, c.pid)
		}
	}
	return out, nil
}

// running reports whether p is still alive: a zombie has finished running,
// and a pid with another start time is another process.
func (p proc) running() bool {
	st, err := readStat(p.pid)
	return err == nil && st.start == p.start && st.state != "Z"
}
