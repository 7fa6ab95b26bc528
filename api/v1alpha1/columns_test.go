package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// `kubectl get` must say SYNCED false for an object the bridge has found
// out of sync, not leave the column empty as if nothing were known.
func TestSyncedColumnShowsFalseWhileOutOfSync(t *testing.T) {
	ctx := context.Background()
	ns := kube.Namespace(t)
	cases := []struct {
		sample, resource string
		obj              client.Object
		setSynced        func(client.Object, bool)
	}{
		{"device-minimal.yaml", "devices", &v1alpha1.Device{},
			func(o client.Object, v bool) { o.(*v1alpha1.Device).Status.Synced = v }},
		{"deviceservice-full.yaml", "deviceservices", &v1alpha1.DeviceService{},
			func(o client.Object, v bool) { o.(*v1alpha1.DeviceService).Status.Synced = v }},
		{"deviceprofile-full.yaml", "deviceprofiles", &v1alpha1.DeviceProfile{},
			func(o client.Object, v bool) { o.(*v1alpha1.DeviceProfile).Status.Synced = v }},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			u := readSample(t, filepath.Join("testdata/upstream", tc.sample))
			u.SetNamespace(ns)
			if err := kube.Client.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			obj := tc.obj
			if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(u), obj); err != nil {
				t.Fatal(err)
			}
			// In sync first, then out of sync: the second write is the
			// one that must not empty the column.
			for _, synced := range []bool{true, false} {
				tc.setSynced(obj, synced)
				if err := kube.Client.Status().Update(ctx, obj); err != nil {
					t.Fatal(err)
				}
				if got := syncedCell(t, tc.resource, ns, obj.GetName()); got != synced {
					t.Errorf("after a status with synced=%v, kubectl get shows SYNCED %v", synced, got)
				}
			}
		})
	}
}

// syncedCell asks the API server for the table kubectl prints and returns
// the SYNCED cell: a bool, or nil when the column is empty.
func syncedCell(t *testing.T, resource, ns, name string) any {
	t.Helper()
	hc, err := rest.HTTPClientFor(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/apis/%s/%s/namespaces/%s/%s/%s", strings.TrimSuffix(kube.Config.Host, "/"), v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version, ns, resource, name)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as a table: %s: %s", url, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("table: %v", err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("table has %d rows, want 1", len(table.Rows))
	}
	for i, col := range table.ColumnDefinitions {
		if col.Name == "SYNCED" {
			return table.Rows[0].Cells[i]
		}
	}
	t.Fatalf("no SYNCED column in %+v", table.ColumnDefinitions)
	return nil
}
