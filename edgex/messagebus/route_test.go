package messagebus

import "testing"

// The client matches topics to filters itself; it must agree with MQTT
// 3.1.1 (section 4.7) for every filter checkFilter accepts.
func TestTopicMatches(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"edgex/events/device/#", "edgex/events/device/svc/profile/dev/source", true},
		{"edgex/events/device/#", "edgex/events/device", true},
		{"edgex/events/device/#", "edgex/events/devices/x", false},
		{"edgex/events/device/#", "edgex/events", false},
		{"edgex/events/device/#", "edgex/system-events/core-metadata/device/add", false},
		{"#", "any/topic/at/all", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a//c", true},
		{"a/+/c", "a/b/c/d", false},
		{"a/+/c", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a", false},
		{"+/+", "a/b", true},
		{"+", "a/b", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		{"a/b", "a/bc", false},
		{"a/+/#", "a/b", true},
		{"a/+/#", "a", false},
		{"edgex/response/core-command/+", "edgex/response/core-command/1234", true},
	}
	for _, c := range cases {
		if err := checkFilter(c.filter); err != nil {
			t.Fatalf("case filter %q is not a valid filter: %v", c.filter, err)
		}
		if got := topicMatches(c.filter, c.topic); got != c.want {
			t.Errorf("topicMatches(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}
