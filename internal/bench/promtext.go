package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The bridge and the kube-apiserver both serve Prometheus' text format;
// the benchmark reads counters from it. Only what the benchmark needs is
// parsed: sample lines with their labels and value. Comments (HELP, TYPE)
// are skipped.

// sample is one line of the text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is every sample of one read of an endpoint.
type scrape []sample

// maxScrapeLine bounds one line: an endpoint that sends longer ones is
// broken, not something to buffer without end.
const maxScrapeLine = 1 << 20

// parseScrape reads a whole text-format exposition.
func parseScrape(r io.Reader) (scrape, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxScrapeLine)
	var out scrape
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// parseSampleLine parses `name{a="x",b="y"} value [timestamp]`.
func parseSampleLine(line string) (sample, error) {
	nameEnd := strings.IndexAny(line, "{ \t")
	if nameEnd <= 0 {
		return sample{}, fmt.Errorf("no metric name and value in %q", truncateText(line, 80))
	}
	s := sample{name: line[:nameEnd], labels: map[string]string{}}
	rest := line[nameEnd:]
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return sample{}, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 {
		return sample{}, fmt.Errorf("%s: want a value and an optional timestamp, got %q", s.name, truncateText(rest, 80))
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", s.name, err)
	}
	s.value = v
	return s, nil
}

// parseLabels reads `a="x",b="y"}` into labels and returns what follows
// the closing brace.
func parseLabels(text string, labels map[string]string) (string, error) {
	for {
		text = strings.TrimLeft(text, " \t,")
		if text == "" {
			return "", errors.New("labels not closed")
		}
		if text[0] == '}' {
			return text[1:], nil
		}
		eq := strings.IndexByte(text, '=')
		if eq <= 0 {
			return "", fmt.Errorf("label without a value in %q", truncateText(text, 80))
		}
		key := strings.TrimSpace(text[:eq])
		value, rest, err := parseQuoted(strings.TrimLeft(text[eq+1:], " \t"))
		if err != nil {
			return "", fmt.Errorf("label %s: %w", key, err)
		}
		labels[key] = value
		text = rest
	}
}

// parseQuoted reads a double-quoted label value with the format's escapes
// (\\, \", \n) and returns it and what follows.
func parseQuoted(text string) (string, string, error) {
	if text == "" || text[0] != '"' {
		return "", "", errors.New("value is not quoted")
	}
	var b strings.Builder
	for i := 1; i < len(text); i++ {
		switch c := text[i]; c {
		case '"':
			return b.String(), text[i+1:], nil
		case '\\':
			if i+1 == len(text) {
				return "", "", errors.New("value ends in an escape")
			}
			i++
			switch text[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(text[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("value not closed")
}

func parseValue(text string) (float64, error) {
	switch text {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", truncateText(text, 40))
	}
	return v, nil
}

// sum adds the samples of a metric whose labels include every pair in
// match (an empty match value matches any value).
func (s scrape) sum(name string, match map[string]string) float64 {
	var total float64
	for _, smp := range s {
		if smp.name == name && smp.matches(match) {
			total += smp.value
		}
	}
	return total
}

// by adds the samples of a metric, grouped by the values of one label.
func (s scrape) by(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range s {
		if smp.name == name && smp.matches(match) {
			out[smp.labels[label]] += smp.value
		}
	}
	return out
}

func (smp sample) matches(match map[string]string) bool {
	for k, v := range match {
		if got, ok := smp.labels[k]; !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
