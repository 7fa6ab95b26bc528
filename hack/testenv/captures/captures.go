// Package captures reads what a real EdgeX 3.1.1 stack said, as recorded in
// edgex/testdata/edgex-v3 inside the repository: curl exchanges and MQTT
// traffic. Conformance tests replay them against the simulator and the
// codecs. The data lives in the repository so that a clone alone passes
// its tests; its README says where and when it was captured.
package captures

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// Dir is edgex/testdata/edgex-v3 under the repository root, found from this
// file's place in the repository (hack/testenv/captures) so that tests of
// any package find it. It does not use testenv.RepoRoot, which would link
// envtest into the codec and fuzz tests that read captures.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	return filepath.Clean(filepath.Join(root, "edgex", "testdata", "edgex-v3"))
}

// Exchange is one recorded HTTP request and the real response.
type Exchange struct {
	// File and Index locate the exchange for test names.
	File  string
	Index int
	// Method, URL (as curl was given it), request headers and body.
	Method  string
	URL     string
	Headers map[string]string
	Body    string
	// Status and ResponseBody are what EdgeX answered.
	Status       int
	ResponseBody string
}

var curlLine = regexp.MustCompile(`^\$ curl .*?-X (\S+) '([^']+)'(.*)$`)
var headerArg = regexp.MustCompile(`-H '([^:]+): ([^']*)'`)
var dataArg = regexp.MustCompile(`-d '(.*)'\s*$`)

// Exchanges parses every exchanges/*.txt file.
func Exchanges() ([]Exchange, error) {
	files, err := filepath.Glob(filepath.Join(Dir(), "exchanges", "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no captured exchanges under %s", Dir())
	}
	var all []Exchange
	for _, f := range files {
		ex, err := parseExchanges(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, ex...)
	}
	return all, nil
}

func parseExchanges(path string) ([]Exchange, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []Exchange
	for i := 0; i < len(lines); i++ {
		m := curlLine.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		ex := Exchange{File: filepath.Base(path), Index: len(out), Method: m[1], URL: m[2], Headers: map[string]string{}}
		for _, h := range headerArg.FindAllStringSubmatch(m[3], -1) {
			ex.Headers[h[1]] = h[2]
		}
		if d := dataArg.FindStringSubmatch(m[3]); d != nil {
			ex.Body = d[1]
		}
		i++
		if i >= len(lines) || !strings.HasPrefix(lines[i], "HTTP/") {
			return nil, fmt.Errorf("line %d: no status line after curl", i+1)
		}
		fields := strings.Fields(lines[i])
		if ex.Status, err = strconv.Atoi(fields[1]); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "$ curl"); i++ {
			body = append(body, lines[i])
		}
		i--
		ex.ResponseBody = strings.TrimSpace(strings.Join(body, "\n"))
		out = append(out, ex)
	}
	return out, nil
}

// Message is one recorded MQTT message.
type Message struct {
	File    string
	Line    int
	Topic   string
	Payload []byte
}

// MQTT parses an mqtt/*.txt file ("topic payload" lines, as mosquitto_sub -v
// prints them).
func MQTT(name string) ([]Message, error) {
	path := filepath.Join(Dir(), "mqtt", name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		topic, payload, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			return nil, fmt.Errorf("%s:%d: no payload", name, n)
		}
		out = append(out, Message{File: name, Line: n, Topic: string(topic), Payload: append([]byte(nil), payload...)})
	}
	return out, sc.Err()
}

// File reads a file under the captures directory.
func File(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(Dir(), rel))
}
