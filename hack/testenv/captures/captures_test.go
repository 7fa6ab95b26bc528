package captures

import "testing"

func TestCapturesParse(t *testing.T) {
	ex, err := Exchanges()
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) < 25 {
		t.Errorf("parsed %d exchanges, expected the full set", len(ex))
	}
	for _, e := range ex {
		if e.Status == 0 || e.Method == "" || e.URL == "" {
			t.Errorf("%s #%d incomplete: %+v", e.File, e.Index, e)
		}
	}
	for _, f := range []string{"mqtt-startup.txt", "mqtt-session1.txt", "internal-cmd.txt"} {
		msgs, err := MQTT(f)
		if err != nil || len(msgs) == 0 {
			t.Errorf("%s: %d messages, %v", f, len(msgs), err)
		}
	}
}
