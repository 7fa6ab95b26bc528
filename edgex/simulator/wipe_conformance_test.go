package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// TestWipeConformance replays what a real EdgeX 3.1.1 said when its Redis
// was restarted empty and device-virtual was restarted after it
// (60-wipe-and-reregister.txt): empty lists, a service that no longer
// exists, the per-item errors of adds that lack their service or profile,
// core-command's wrapped 404, and then device-virtual registering its
// service, profiles and devices again with new ids, each announced.
func TestWipeConformance(t *testing.T) {
	capture, err := captures.File("exchanges/60-wipe-and-reregister.txt")
	if err != nil {
		t.Fatal(err)
	}
	exchanges, err := captures.Exchanges()
	if err != nil {
		t.Fatal(err)
	}
	sim, b := startWithBroker(t, Options{})
	systemEvents := subscribe(t, b.URL(), "edgex/system-events/#")
	loadCapturedStack(t, sim, exchanges, mustMQTT(t, "mqtt-startup.txt"))
	loaded := len(systemEvents.waitFor(t, initialEvents, nil))

	steps := parseWipeCapture(t, capture)
	if len(steps.exchanges) == 0 || len(steps.wantTopics) == 0 {
		t.Fatalf("the capture parsed to %d exchanges and %d system event topics", len(steps.exchanges), len(steps.wantTopics))
	}
	deviceIDs := map[string][]string{} // per device GET: the ids seen, in order
	for i, ex := range steps.exchanges {
		switch steps.before[i] {
		case "wipe":
			sim.Wipe()
		case "restart":
			if _, err := sim.RestartDeviceService("device-virtual"); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(ex.Method+" "+pathOf(ex.URL), func(t *testing.T) { replayExchange(t, sim, ex) })
		if ex.Method == "GET" && strings.Contains(ex.URL, ":59881/api/v3/device/name/") {
			got := call(t, "GET", strings.Replace(ex.URL, capturedMetadata, sim.MetadataURL(), 1), "")
			d := decodeAs[responses.DeviceResponse](t, got).Device
			deviceIDs[d.Name] = append(deviceIDs[d.Name], d.Id)
		}
	}
	for name, ids := range deviceIDs {
		if len(ids) != 2 || ids[0] == ids[1] {
			t.Errorf("device %s had ids %v before and after the wipe; a re-registered device gets a new id", name, ids)
		}
	}

	got := systemEvents.waitFor(t, loaded+len(steps.wantTopics), nil)
	var gotTopics []string
	for _, m := range got[loaded:] {
		gotTopics = append(gotTopics, m.topic)
	}
	slices.Sort(gotTopics)
	if !slices.Equal(gotTopics, steps.wantTopics) {
		t.Errorf("system events after the wipe:\n got %s\nwant %s", strings.Join(gotTopics, "\n     "), strings.Join(steps.wantTopics, "\n     "))
	}
}

type wipeCapture struct {
	exchanges []captures.Exchange
	// before[i] is what happened to the stack before exchanges[i]: "wipe",
	// "restart" or "".
	before     []string
	wantTopics []string
}

var (
	plainCurl  = regexp.MustCompile(`^\$ curl -s -X (\S+) (\S+)(?: -d '(.*)')?\s*$`)
	httpStatus = regexp.MustCompile(`^\[HTTP (\d+)\]$`)
	topicCount = regexp.MustCompile(`^\s+(\d+) (edgex/system-events/\S+)$`)
)

// parseWipeCapture reads the capture's sections ("## Redis restarted ...",
// "## device-virtual restarted ..."), its curl exchanges (URLs unquoted,
// unlike the other files) and the system event topics counted at its end.
func parseWipeCapture(t *testing.T, data []byte) wipeCapture {
	t.Helper()
	var c wipeCapture
	next := ""
	var cur *captures.Exchange
	var body []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## ") && strings.Contains(line, "Redis restarted"):
			next = "wipe"
		case strings.HasPrefix(line, "## ") && strings.Contains(line, "device-virtual restarted"):
			next = "restart"
		case plainCurl.MatchString(line):
			m := plainCurl.FindStringSubmatch(line)
			cur, body = &captures.Exchange{File: "60-wipe-and-reregister.txt", Index: len(c.exchanges), Method: m[1], URL: m[2], Body: m[3]}, nil
		case cur != nil && httpStatus.MatchString(line):
			cur.Status, _ = strconv.Atoi(httpStatus.FindStringSubmatch(line)[1])
			cur.ResponseBody = strings.TrimSpace(strings.Join(body, "\n"))
			if !json.Valid([]byte(cur.ResponseBody)) {
				t.Fatalf("exchange %d: answer is not JSON: %q", cur.Index, cur.ResponseBody)
			}
			c.exchanges = append(c.exchanges, *cur)
			c.before = append(c.before, next)
			cur, next = nil, ""
		case cur != nil:
			body = append(body, line)
		case topicCount.MatchString(line):
			m := topicCount.FindStringSubmatch(line)
			n, _ := strconv.Atoi(m[1])
			for range n {
				c.wantTopics = append(c.wantTopics, m[2])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.wantTopics)
	return c
}
