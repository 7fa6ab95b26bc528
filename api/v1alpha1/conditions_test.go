package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetCondition(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	synced := Condition{Type: ConditionSynced, Status: metav1.ConditionTrue, Reason: ReasonInSync, LastTransitionTime: earlier}
	cases := []struct {
		name        string
		start       []Condition
		set         Condition
		wantChanged bool
		wantKeptTS  bool
	}{
		{"new condition is added", nil, synced, true, true},
		{"identical condition is a no-op", []Condition{synced}, Condition{Type: ConditionSynced, Status: metav1.ConditionTrue, Reason: ReasonInSync}, false, true},
		{"same status, new message keeps the transition time", []Condition{synced},
			Condition{Type: ConditionSynced, Status: metav1.ConditionTrue, Reason: ReasonInSync, Message: "m"}, true, true},
		{"status flip moves the transition time", []Condition{synced},
			Condition{Type: ConditionSynced, Status: metav1.ConditionFalse, Reason: ReasonEdgeXUnreachable}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conds := append([]Condition(nil), tc.start...)
			if got := SetCondition(&conds, tc.set); got != tc.wantChanged {
				t.Errorf("changed = %v, want %v", got, tc.wantChanged)
			}
			c := FindCondition(conds, ConditionSynced)
			if c == nil || c.Status != tc.set.Status || c.Reason != tc.set.Reason {
				t.Fatalf("condition not set: %+v", c)
			}
			if kept := c.LastTransitionTime.Equal(&earlier); kept != tc.wantKeptTS {
				t.Errorf("transition time kept = %v, want %v", kept, tc.wantKeptTS)
			}
			if len(conds) != 1 {
				t.Errorf("got %d conditions, want 1", len(conds))
			}
		})
	}
}

func TestEdgeXName(t *testing.T) {
	cases := []struct {
		name        string
		annotations map[string]string
		labels      map[string]string
		want        string
	}{
		{"annotation wins", map[string]string{EdgeXNameAnnotation: "Cam_01~x"}, map[string]string{LegacyEdgeXNameLabel: "other"}, "Cam_01~x"},
		{"dock label when no annotation", nil, map[string]string{LegacyEdgeXNameLabel: "Random-Boolean-Device"}, "Random-Boolean-Device"},
		{"object name otherwise", nil, nil, "cr-name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Device{ObjectMeta: metav1.ObjectMeta{Name: "cr-name", Annotations: tc.annotations, Labels: tc.labels}}
			if got := EdgeXName(d); got != tc.want {
				t.Errorf("EdgeXName = %q, want %q", got, tc.want)
			}
		})
	}
}
