// Package webhook makes kube-apiserver call Bulwark's validating admission
// webhook: it creates and rotates the webhook's own CA and serving
// certificate (EnsureCerts, Rotator) and registers the
// ValidatingWebhookConfiguration that names Bulwark's endpoint with that CA
// as caBundle (Register, Unregister).
//
// It does not decide anything about the objects under review — the review
// logic and its http.Handler live elsewhere — and it does not run the HTTPS
// server; the caller serves its handler with Rotator.TLSConfig.
package webhook
