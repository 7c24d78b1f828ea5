package cluster

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// MaxKubeconfigBytes bounds a kubeconfig the server accepts.
const MaxKubeconfigBytes = 1 << 20

// ErrBadKubeconfig is returned for a kubeconfig the server will not keep.
var ErrBadKubeconfig = errors.New("unusable kubeconfig")

// Kubeconfig is one cluster's connection, ready to be sealed and stored:
// a kubeconfig with exactly one context and everything it needs embedded.
type Kubeconfig struct {
	Data    []byte
	Context string
	Server  string
}

// Contexts lists the context names of a kubeconfig, sorted.
func Contexts(data []byte) ([]string, error) {
	cfg, err := load(data)
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range cfg.Contexts {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// Flatten reads a kubeconfig file as kubectl would and returns it reduced
// to one context (contextName, or the current one when empty) with the
// files it refers to (certificates, keys, token files) embedded. It runs
// where the file is — the CLI — because the server never reads files a
// kubeconfig names.
func Flatten(path, contextName string) (*Kubeconfig, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	if contextName != "" {
		cfg.CurrentContext = contextName
	}
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKubeconfig, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("embedding the files kubeconfig %s refers to: %w", path, err)
	}
	for _, a := range cfg.AuthInfos {
		if a.TokenFile != "" {
			tok, err := readSmallFile(a.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("reading the token file of kubeconfig %s: %w", path, err)
			}
			a.Token, a.TokenFile = tok, ""
		}
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding kubeconfig: %w", err)
	}
	return Prepare(data, "")
}

// Prepare validates a kubeconfig the server is asked to keep and reduces
// it to one context (contextName, or the current one when empty). The
// kubeconfig is hostile input: it must embed its certificates and
// credentials (no file paths, which would read the server's files) and
// use no exec or auth-provider plugins (which would run commands on the
// server). Errors never quote credentials.
func Prepare(data []byte, contextName string) (*Kubeconfig, error) {
	cfg, err := load(data)
	if err != nil {
		return nil, err
	}
	if contextName != "" {
		cfg.CurrentContext = contextName
	}
	if cfg.CurrentContext == "" {
		return nil, fmt.Errorf("%w: no context named and no current context", ErrBadKubeconfig)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("%w: no context %q", ErrBadKubeconfig, cfg.CurrentContext)
	}
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKubeconfig, err)
	}
	cl := cfg.Clusters[ctx.Cluster]
	if cl == nil || cl.Server == "" {
		return nil, fmt.Errorf("%w: context %q has no cluster server", ErrBadKubeconfig, cfg.CurrentContext)
	}
	if cl.CertificateAuthority != "" {
		return nil, fmt.Errorf("%w: certificate-authority is a file path; embed it (certificate-authority-data), e.g. with \"bulwark cluster add --kubeconfig\"", ErrBadKubeconfig)
	}
	if a := cfg.AuthInfos[ctx.AuthInfo]; a != nil {
		switch {
		case a.Exec != nil:
			return nil, fmt.Errorf("%w: exec credential plugins are not accepted (they would run a command on the server); use a service-account token", ErrBadKubeconfig)
		case a.AuthProvider != nil:
			return nil, fmt.Errorf("%w: auth-provider plugins are not accepted; use a service-account token", ErrBadKubeconfig)
		case a.ClientCertificate != "" || a.ClientKey != "" || a.TokenFile != "":
			return nil, fmt.Errorf("%w: client-certificate, client-key and tokenFile are file paths; embed them", ErrBadKubeconfig)
		}
	}
	if _, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKubeconfig, err)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding kubeconfig: %w", err)
	}
	return &Kubeconfig{Data: out, Context: cfg.CurrentContext, Server: cl.Server}, nil
}

// RESTConfig turns a kubeconfig Prepare returned into a client
// configuration.
func RESTConfig(data []byte) (*rest.Config, error) {
	cfg, err := load(data)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKubeconfig, err)
	}
	return rc, nil
}

func load(data []byte) (*clientcmdapi.Config, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadKubeconfig)
	}
	if len(data) > MaxKubeconfigBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadKubeconfig, len(data), MaxKubeconfigBytes)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a kubeconfig", ErrBadKubeconfig)
	}
	return cfg, nil
}
