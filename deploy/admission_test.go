package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/edgebridge/edgebridge/devicecontroller/admission"
)

// certificate and issuer are the fields of cert-manager's v1 kinds that
// the admission component relies on.
type certificate struct {
	Spec struct {
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		IssuerRef  struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type issuer struct {
	Spec struct {
		SelfSigned *struct{} `json:"selfSigned"`
	} `json:"spec"`
}

// admissionParts are the admission component's objects as one overlay
// installs them.
type admissionParts struct {
	webhook     *admissionv1.ValidatingWebhookConfiguration
	service     *corev1.Service
	deployment  *appsv1.Deployment
	cert        *certificate
	certName    string
	certNS      string
	issuerName  string
	issuerNS    string
	issuerValid bool
}

// TestAdmissionComponentPartsFitTogether checks what no API server checks:
// that the webhook configuration, the Service, the Deployment and
// cert-manager's Certificate and Issuer name each other correctly, so that
// the API server can reach the webhook over TLS it trusts.
func TestAdmissionComponentPartsFitTogether(t *testing.T) {
	checks := []struct {
		name  string
		check func(admissionParts) error
	}{
		{"the webhook calls the installed Service on one of its ports", webhookCallsService},
		{"the webhook calls the path the webhook serves", func(p admissionParts) error {
			if path := p.webhook.Webhooks[0].ClientConfig.Service.Path; path == nil || *path != admission.Path {
				return fmt.Errorf("path %v, the webhook serves %s", path, admission.Path)
			}
			return nil
		}},
		{"the Service reaches the port the webhook listens on", serviceReachesWebhook},
		{"the Certificate names the Service", func(p admissionParts) error {
			want := p.service.Name + "." + p.service.Namespace + ".svc"
			if !slices.Contains(p.cert.Spec.DNSNames, want) {
				return fmt.Errorf("dnsNames %v lack %s, the name the API server connects to", p.cert.Spec.DNSNames, want)
			}
			return nil
		}},
		{"the Certificate is issued by the installed Issuer", func(p admissionParts) error {
			ref := p.cert.Spec.IssuerRef
			if ref.Kind != "Issuer" || ref.Name != p.issuerName || p.certNS != p.issuerNS || !p.issuerValid {
				return fmt.Errorf("issuerRef %+v in %s; installed: a self-signed Issuer %s/%s", ref, p.certNS, p.issuerNS, p.issuerName)
			}
			return nil
		}},
		{"cert-manager injects the Certificate's CA into the webhook", func(p admissionParts) error {
			want := p.certNS + "/" + p.certName
			if got := p.webhook.Annotations["cert-manager.io/inject-ca-from"]; got != want {
				return fmt.Errorf("cert-manager.io/inject-ca-from is %q, want %q", got, want)
			}
			return nil
		}},
		{"the webhook serves the Certificate's Secret", webhookMountsCertificate},
		{"status writes never reach the webhook", func(p admissionParts) error {
			for _, r := range p.webhook.Webhooks[0].Rules {
				if !slices.Equal(r.Resources, []string{"devices"}) {
					return fmt.Errorf("rule on resources %v, want only devices", r.Resources)
				}
			}
			return nil
		}},
		{"a webhook outage never blocks device edits", func(p admissionParts) error {
			if fp := p.webhook.Webhooks[0].FailurePolicy; fp == nil || *fp != admissionv1.Ignore {
				return fmt.Errorf("failurePolicy %v, want Ignore", fp)
			}
			return nil
		}},
	}
	for _, v := range variants {
		if !v.admission {
			continue
		}
		parts := admissionPartsOf(t, v)
		for _, c := range checks {
			t.Run(v.String()+"/"+c.name, func(t *testing.T) {
				if err := c.check(parts); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func admissionPartsOf(t *testing.T, v variant) admissionParts {
	t.Helper()
	objs := build(t, v)
	certObj := find(t, objs, "Certificate", "edgebridge-admission")
	issuerObj := find(t, objs, "Issuer", "edgebridge-admission-selfsigned")
	p := admissionParts{
		webhook:    decode[admissionv1.ValidatingWebhookConfiguration](t, find(t, objs, "ValidatingWebhookConfiguration", "edgebridge-device-admission")),
		service:    decode[corev1.Service](t, find(t, objs, "Service", "edgebridge-admission")),
		deployment: decode[appsv1.Deployment](t, find(t, objs, "Deployment", "edgebridge-admission")),
		cert:       decode[certificate](t, certObj),
		certName:   certObj.GetName(),
		certNS:     certObj.GetNamespace(),
		issuerName: issuerObj.GetName(),
		issuerNS:   issuerObj.GetNamespace(),
	}
	p.issuerValid = decode[issuer](t, issuerObj).Spec.SelfSigned != nil
	if len(p.webhook.Webhooks) != 1 || p.webhook.Webhooks[0].ClientConfig.Service == nil {
		t.Fatalf("want one webhook that calls a Service, have %d", len(p.webhook.Webhooks))
	}
	return p
}

func webhookCallsService(p admissionParts) error {
	ref := p.webhook.Webhooks[0].ClientConfig.Service
	if ref.Name != p.service.Name || ref.Namespace != p.service.Namespace {
		return fmt.Errorf("calls Service %s/%s; installed: %s/%s", ref.Namespace, ref.Name, p.service.Namespace, p.service.Name)
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	if !slices.ContainsFunc(p.service.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == port }) {
		return fmt.Errorf("calls port %d, which the Service does not expose", port)
	}
	return nil
}

func serviceReachesWebhook(p admissionParts) error {
	pod := p.deployment.Spec.Template
	if !labels.SelectorFromSet(p.service.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(p.service.Spec.Selector) == 0 {
		return fmt.Errorf("Service selector %v does not select the webhook's pods %v", p.service.Spec.Selector, pod.Labels)
	}
	c := pod.Spec.Containers[0]
	listen := "9443"
	if i := slices.IndexFunc(c.Args, isFlag("port")); i >= 0 {
		listen = strings.TrimPrefix(c.Args[i], "--port=")
	}
	for _, sp := range p.service.Spec.Ports {
		if got := fmt.Sprint(containerPort(&c, sp.TargetPort)); got != listen {
			return fmt.Errorf("Service port %d leads to container port %s, the webhook listens on %s", sp.Port, got, listen)
		}
	}
	return nil
}

func webhookMountsCertificate(p admissionParts) error {
	pod := p.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	certDir := ""
	if i := slices.IndexFunc(c.Args, isFlag("cert-dir")); i >= 0 {
		certDir = strings.TrimPrefix(c.Args[i], "--cert-dir=")
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != certDir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == p.cert.Spec.SecretName {
				return nil
			}
		}
	}
	return fmt.Errorf("no volume of Secret %s mounted at --cert-dir %q", p.cert.Spec.SecretName, certDir)
}
