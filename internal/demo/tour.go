package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
)

// readyInfo is what a running demo offers: written to --ready-file once
// everything is up, and the facts the tour's commands are made of.
type readyInfo struct {
	Kubeconfig string `json:"kubeconfig"`
	Namespace  string `json:"namespace"`
	Pool       string `json:"pool"`
	// Devices are the demo devices' Kubernetes names by EdgeX name.
	Devices         map[string]string `json:"devices"`
	CoreMetadataURL string            `json:"coreMetadataURL"`
	CoreCommandURL  string            `json:"coreCommandURL"`
	BrokerURL       string            `json:"brokerURL"`
	MetricsURL      string            `json:"metricsURL"`
	// Admission says whether the device webhook runs.
	Admission bool `json:"admission"`
	// Logs are the log files of the demo's parts, by part.
	Logs map[string]string `json:"logs"`
}

// writeReadyFile writes info atomically, so that a reader never sees half
// of it.
func writeReadyFile(path string, info readyInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	return nil
}

// tourData is readyInfo with the commands' spelling worked out.
type tourData struct {
	readyInfo
	Kubectl, MosquittoSub string
	BrokerHost            string
	BrokerPort            string
	GPIO, Sensor, Camera  string
	GPIOEdgeX             string
	CameraEdgeX           string
}

var tour = template.Must(template.New("tour").Parse(`
edgebridge demo is running: pool {{.Pool}}, namespace {{.Namespace}}. Ctrl-C stops it and everything it started.

In another terminal:

  export KUBECONFIG={{.Kubeconfig}}

1. The devices the bridge imported from EdgeX, now managed (the cluster is their truth):

  {{.Kubectl}} get devices -n {{.Namespace}}
  {{.Kubectl}} get deviceservices,deviceprofiles -n {{.Namespace}}

2. Switch the GPIO board's pin 17 on:

  {{.Kubectl}} edit device {{.GPIO}} -n {{.Namespace}}

   and add under spec:

    deviceProperties:
      pin_17:
        name: pin_17
        desiredValue: "true"

   or in one line:

  {{.Kubectl}} patch device {{.GPIO}} -n {{.Namespace}} --type merge -p '{"spec":{"deviceProperties":{"pin_17":{"name":"pin_17","desiredValue":"true"}}}}'

3. What the device reports, in status and from EdgeX itself:

  {{.Kubectl}} get device {{.GPIO}} -n {{.Namespace}} -o jsonpath='{.status.deviceProperties.pin_17.actualValue}{"\n"}'
  {{.Kubectl}} get device {{.GPIO}} -n {{.Namespace}} -o jsonpath='{.status.conditions}{"\n"}'
  curl -s {{.CoreCommandURL}}/api/v3/device/name/{{.GPIOEdgeX}}/pin_17

   A camera-style command: the camera's PTZ position is an Object resource (as ONVIF cameras have), set as JSON
   and compared as JSON; -o wide shows whether each device's desired values are in sync:

  {{.Kubectl}} patch device {{.Camera}} -n {{.Namespace}} --type merge -p '{"spec":{"deviceProperties":{"ptz":{"name":"ptz","desiredValue":"{\"pan\":10.5,\"tilt\":-5,\"zoom\":2}"}}}}'
  {{.Kubectl}} get devices -n {{.Namespace}} -o wide
  curl -s {{.CoreCommandURL}}/api/v3/device/name/{{.CameraEdgeX}}/ptz
{{if .Admission}}
4. A value the profile forbids is refused when applied (pin_27 is an input, read-only):

  {{.Kubectl}} patch device {{.GPIO}} -n {{.Namespace}} --type merge -p '{"spec":{"deviceProperties":{"pin_27":{"name":"pin_27","desiredValue":"true"}}}}'
{{end}}
5. Telemetry: readings land in status (a camera frame only as its type and size; the sensor reports every 10 s,
   the camera every 30 s), and every device event is re-published by Kubernetes identity:

  {{.Kubectl}} get device {{.Sensor}} -n {{.Namespace}} -o jsonpath='{.status.deviceProperties.temperature.actualValue}{"\n"}'
  {{.Kubectl}} get device {{.Camera}} -n {{.Namespace}} -o jsonpath='{.status.deviceProperties.snapshot}{"\n"}'
  {{.MosquittoSub}} -h {{.BrokerHost}} -p {{.BrokerPort}} -t 'edgebridge/#' -v

6. Metrics:

  curl -s {{.MetricsURL}} | grep edgebridge_reading_value

Logs:{{range $part, $path := .Logs}}
  {{$part}}: {{$path}}{{end}}

`))

// printTour prints the guided tour with commands to paste as they are.
func printTour(w io.Writer, info readyInfo, binDir string) error {
	broker, err := url.Parse(info.BrokerURL)
	if err != nil {
		return fmt.Errorf("broker URL %q: %w", info.BrokerURL, err)
	}
	d := tourData{
		readyInfo:    info,
		Kubectl:      command("kubectl", binDir),
		MosquittoSub: command("mosquitto_sub", binDir),
		BrokerHost:   broker.Hostname(),
		BrokerPort:   broker.Port(),
		GPIOEdgeX:    "gpio-board-01",
		CameraEdgeX:  "camera-01",
		GPIO:         info.Devices["gpio-board-01"],
		Sensor:       info.Devices["env-sensor-01"],
		Camera:       info.Devices["camera-01"],
	}
	return tour.Execute(w, d)
}

// command is how to run a tool: by name when it is on PATH, else by its
// path in bin/ (where `make demo` builds kubectl when PATH has none).
func command(name, binDir string) string {
	if _, err := exec.LookPath(name); err == nil {
		return name
	}
	if p := filepath.Join(binDir, name); isExecutable(p) {
		return p
	}
	return name
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
