package webhook

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names Register writes.
const (
	// DefaultName is the ValidatingWebhookConfiguration's name when
	// Config.Name is empty.
	DefaultName = "bulwark"
	// WebhookName names the one webhook in the configuration.
	WebhookName = "images.bulwark.io"
	// ManagedByLabel marks the configuration as Bulwark's; Unregister
	// deletes only configurations carrying it with ManagedBy.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "bulwark"
	// FieldManager owns the fields Register applies.
	FieldManager = "bulwark"
)

// namespaceNameLabel is set by kube-apiserver on every namespace to its name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// DefaultTimeoutSeconds is how long kube-apiserver waits for the webhook
// when Config.TimeoutSeconds is zero.
const DefaultTimeoutSeconds = 5

// ErrInvalidConfig is wrapped by the errors Register returns for a Config
// it refuses before calling the API server.
var ErrInvalidConfig = errors.New("invalid webhook configuration")

// Config says where kube-apiserver reaches the webhook and how it treats
// its answers.
type Config struct {
	// Name of the ValidatingWebhookConfiguration; DefaultName when empty.
	Name string
	// URL is https://host[:port]/path, for a server outside the cluster.
	// Exactly one of URL and Service is set.
	URL string
	// Service is the in-cluster Service in front of the webhook
	// (namespace, name, and optionally path and port).
	Service *admissionregistrationv1.ServiceReference
	// CABundle is the PEM CA that signs the webhook's serving certificate.
	CABundle []byte
	// FailurePolicy is "Ignore" (the default: a webhook that cannot be
	// reached admits) or "Fail".
	FailurePolicy string
	// TimeoutSeconds is 1 to 30; DefaultTimeoutSeconds when zero.
	TimeoutSeconds int32
	// ExcludeNamespaces are namespaces whose objects are never sent to the
	// webhook — the caller passes the namespace Bulwark runs in, so that
	// Bulwark can always be repaired. kube-system is always excluded.
	ExcludeNamespaces []string
}

// Register creates the ValidatingWebhookConfiguration c describes, or
// updates it to match, by server-side apply: calling it again with the same
// Config changes nothing. The configuration holds one webhook, WebhookName,
// reviewing CREATE and UPDATE of pods, pods/ephemeralcontainers,
// deployments, replicasets, statefulsets, daemonsets, jobs and cronjobs
// outside the excluded namespaces.
func Register(ctx context.Context, client kubernetes.Interface, c Config) error {
	apply, err := c.applyConfiguration()
	if err != nil {
		return err
	}
	_, err = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Apply(ctx, apply,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying ValidatingWebhookConfiguration %s: %w", *apply.Name, err)
	}
	return nil
}

// Unregister deletes the ValidatingWebhookConfiguration name (DefaultName
// when empty). One that does not exist is not an error; one that is not
// labelled as Bulwark's is left alone and reported.
func Unregister(ctx context.Context, client kubernetes.Interface, name string) error {
	if name == "" {
		name = DefaultName
	}
	hooks := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	existing, err := hooks.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", name, err)
	}
	if existing.Labels[ManagedByLabel] != ManagedBy {
		return fmt.Errorf("not deleting ValidatingWebhookConfiguration %s: it lacks the label %s=%s", name, ManagedByLabel, ManagedBy)
	}
	// The UID precondition keeps a configuration someone re-created in
	// the meantime.
	err = hooks.Delete(ctx, name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(existing.UID))})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ValidatingWebhookConfiguration %s: %w", name, err)
	}
	return nil
}

// applyConfiguration validates c and builds what Register applies.
func (c Config) applyConfiguration() (*admissionregistrationv1ac.ValidatingWebhookConfigurationApplyConfiguration, error) {
	name := c.Name
	if name == "" {
		name = DefaultName
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("%w: name %q: %s", ErrInvalidConfig, name, strings.Join(errs, "; "))
	}
	client, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	failurePolicy, err := c.failurePolicy()
	if err != nil {
		return nil, err
	}
	timeout := c.TimeoutSeconds
	if timeout == 0 {
		timeout = DefaultTimeoutSeconds
	}
	if timeout < 1 || timeout > 30 {
		return nil, fmt.Errorf("%w: timeoutSeconds %d is outside 1 to 30", ErrInvalidConfig, c.TimeoutSeconds)
	}
	excluded, err := c.excludedNamespaces()
	if err != nil {
		return nil, err
	}

	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) *admissionregistrationv1ac.RuleWithOperationsApplyConfiguration {
		return admissionregistrationv1ac.RuleWithOperations().
			WithOperations(ops...).
			WithAPIGroups(group).
			WithAPIVersions("v1").
			WithResources(resources...).
			WithScope(admissionregistrationv1.NamespacedScope)
	}
	hook := admissionregistrationv1ac.ValidatingWebhook().
		WithName(WebhookName).
		WithClientConfig(client).
		WithRules(
			rule("", "pods", "pods/ephemeralcontainers"),
			rule("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
			rule("batch", "jobs", "cronjobs"),
		).
		WithFailurePolicy(failurePolicy).
		WithMatchPolicy(admissionregistrationv1.Equivalent).
		WithNamespaceSelector(metav1ac.LabelSelector().WithMatchExpressions(
			metav1ac.LabelSelectorRequirement().
				WithKey(namespaceNameLabel).
				WithOperator(metav1.LabelSelectorOpNotIn).
				WithValues(excluded...),
		)).
		WithSideEffects(admissionregistrationv1.SideEffectClassNone).
		WithTimeoutSeconds(timeout).
		WithAdmissionReviewVersions("v1")
	return admissionregistrationv1ac.ValidatingWebhookConfiguration(name).
		WithLabels(map[string]string{ManagedByLabel: ManagedBy}).
		WithWebhooks(hook), nil
}

func (c Config) clientConfig() (*admissionregistrationv1ac.WebhookClientConfigApplyConfiguration, error) {
	if err := checkCABundle(c.CABundle); err != nil {
		return nil, err
	}
	client := admissionregistrationv1ac.WebhookClientConfig().WithCABundle(c.CABundle...)
	switch {
	case c.URL != "" && c.Service != nil:
		return nil, fmt.Errorf("%w: both URL and Service are set; set one", ErrInvalidConfig)
	case c.URL != "":
		if err := checkURL(c.URL); err != nil {
			return nil, err
		}
		return client.WithURL(c.URL), nil
	case c.Service != nil:
		svc, err := serviceReference(c.Service)
		if err != nil {
			return nil, err
		}
		return client.WithService(svc), nil
	default:
		return nil, fmt.Errorf("%w: neither URL nor Service is set", ErrInvalidConfig)
	}
}

// checkURL applies kube-apiserver's rules for a webhook URL, so a mistake
// fails here with a plain message.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: URL %q is not of the form https://host[:port]/path: %w", ErrInvalidConfig, raw, err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%w: URL %q: scheme must be https, not %q", ErrInvalidConfig, raw, u.Scheme)
	case u.Hostname() == "":
		return fmt.Errorf("%w: URL %q has no host", ErrInvalidConfig, raw)
	case u.User != nil:
		return fmt.Errorf("%w: URL %q must not contain user information", ErrInvalidConfig, raw)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%w: URL %q must not have a query", ErrInvalidConfig, raw)
	case u.Fragment != "":
		return fmt.Errorf("%w: URL %q must not have a fragment", ErrInvalidConfig, raw)
	}
	return nil
}

func serviceReference(s *admissionregistrationv1.ServiceReference) (*admissionregistrationv1ac.ServiceReferenceApplyConfiguration, error) {
	if errs := validation.IsDNS1123Label(s.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("%w: service namespace %q: %s", ErrInvalidConfig, s.Namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(s.Name); len(errs) > 0 {
		return nil, fmt.Errorf("%w: service name %q: %s", ErrInvalidConfig, s.Name, strings.Join(errs, "; "))
	}
	ref := admissionregistrationv1ac.ServiceReference().WithNamespace(s.Namespace).WithName(s.Name)
	if s.Path != nil {
		if !strings.HasPrefix(*s.Path, "/") {
			return nil, fmt.Errorf("%w: service path %q must start with /", ErrInvalidConfig, *s.Path)
		}
		ref.WithPath(*s.Path)
	}
	if s.Port != nil {
		if *s.Port < 1 || *s.Port > 65535 {
			return nil, fmt.Errorf("%w: service port %d is outside 1 to 65535", ErrInvalidConfig, *s.Port)
		}
		ref.WithPort(*s.Port)
	}
	return ref, nil
}

// checkCABundle requires at least one certificate, and nothing but
// certificates, in bundle.
func checkCABundle(bundle []byte) error {
	if len(bundle) == 0 {
		return fmt.Errorf("%w: CABundle is empty", ErrInvalidConfig)
	}
	n := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return fmt.Errorf("%w: CABundle has data that is not PEM", ErrInvalidConfig)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("%w: CABundle holds a %s block, want only CERTIFICATE", ErrInvalidConfig, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%w: CABundle certificate %d: %w", ErrInvalidConfig, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: CABundle holds no certificate", ErrInvalidConfig)
	}
	return nil
}

func (c Config) failurePolicy() (admissionregistrationv1.FailurePolicyType, error) {
	switch p := admissionregistrationv1.FailurePolicyType(c.FailurePolicy); p {
	case "":
		return admissionregistrationv1.Ignore, nil
	case admissionregistrationv1.Ignore, admissionregistrationv1.Fail:
		return p, nil
	default:
		return "", fmt.Errorf("%w: failurePolicy %q: want Ignore or Fail", ErrInvalidConfig, c.FailurePolicy)
	}
}

// excludedNamespaces is kube-system plus c.ExcludeNamespaces, sorted and
// without repeats so that the applied selector does not change with the
// order the caller lists them in.
func (c Config) excludedNamespaces() ([]string, error) {
	ns := []string{"kube-system"}
	for _, n := range c.ExcludeNamespaces {
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, fmt.Errorf("%w: excluded namespace %q: %s", ErrInvalidConfig, n, strings.Join(errs, "; "))
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return slices.Compact(ns), nil
}
