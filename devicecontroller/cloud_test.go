package devicecontroller_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/edgebridge/edgebridge/devicecontroller"
)

// Behind YurtHub, once YurtHub finds the cloud unhealthy it answers writes
// itself: a create with 201 and the request's own body, an update or patch
// with 200 and the cached object, a request it cannot serve with 400. The
// bridge must not take those for the API server's answers: they mean the
// cloud is unreachable, and the write did not happen. Every kube-apiserver
// answer carries an Audit-Id; the stand-in below answers as YurtHub's local
// proxy does, without one.
func TestAnswersNotFromTheAPIServerMeanTheCloudIsAway(t *testing.T) {
	cases := []struct {
		name          string
		method, path  string
		status        int
		auditID       bool
		wantErr       bool
		wantCloudDown bool
	}{
		{name: "create echoed by a proxy", method: http.MethodPost, path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
			status: http.StatusCreated, wantErr: true, wantCloudDown: true},
		{name: "status patch answered from a proxy's cache", method: http.MethodPatch, path: "/apis/iot.openyurt.io/v1alpha1/namespaces/a/devices/d/status",
			status: http.StatusOK, wantErr: true, wantCloudDown: true},
		{name: "update answered from a proxy's cache", method: http.MethodPut, path: "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
			status: http.StatusOK, wantErr: true, wantCloudDown: true},
		{name: "delete refused by a proxy", method: http.MethodDelete, path: "/apis/iot.openyurt.io/v1alpha1/namespaces/a/devices/d",
			status: http.StatusForbidden, wantErr: true, wantCloudDown: true},
		{name: "read a proxy cannot serve", method: http.MethodGet, path: "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
			status: http.StatusBadRequest, wantErr: true, wantCloudDown: true},
		{name: "a proxy asks to come again", method: http.MethodGet, path: "/apis/iot.openyurt.io/v1alpha1/namespaces/a/devices?watch=true&sendInitialEvents=true",
			status: http.StatusTooManyRequests},
		{name: "read served from a proxy's cache", method: http.MethodGet, path: "/apis/iot.openyurt.io/v1alpha1/namespaces/a/devices",
			status: http.StatusOK},
		{name: "write answered by the API server", method: http.MethodPatch, path: "/apis/iot.openyurt.io/v1alpha1/namespaces/a/devices/d/status",
			status: http.StatusOK, auditID: true},
		{name: "refusal by the API server", method: http.MethodPut, path: "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
			status: http.StatusConflict, auditID: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if tc.auditID {
					w.Header().Set("Audit-Id", "6f1c2d3e")
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			cloud := devicecontroller.NewCloud("cloudtest", 5*time.Second)
			cfg := cloud.Config(&rest.Config{Host: srv.URL})
			hc, err := rest.HTTPClientFor(cfg)
			must(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, bytes.NewBufferString(`{"kind":"X"}`))
			must(t, err)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("error %v, want one: %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "not by the API server") {
				t.Errorf("the error does not say who answered: %v", err)
			}
			if down, _, _ := cloud.Down(); down != tc.wantCloudDown {
				t.Errorf("cloud down %v, want %v", down, tc.wantCloudDown)
			}
		})
	}
}
