// Package version holds the build's identity: the release, the source commit
// and the build date, set at link time with -ldflags -X, and the Go toolchain
// read at run time. It owns nothing else.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time, for example:
//
//	go build -ldflags "-X github.com/bulwarkhq/bulwark/internal/version.Version=v0.1.0"
var (
	Version   = "dev"
	Commit    = ""
	BuildDate = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's Info. Where the linker set no commit, the
// VCS revision Go stamps into builds made inside a checkout is used.
func Get() Info {
	info := Info{
		Version:   Version,
		Commit:    Commit,
		BuildDate: BuildDate,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.Commit == "" {
		info.Commit = vcsRevision()
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.BuildDate == "" {
		info.BuildDate = "unknown"
	}
	return info
}

func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// String renders the Info the way `bulwark version` prints it.
func (i Info) String() string {
	return fmt.Sprintf("bulwark %s\n  commit:     %s\n  built:      %s\n  go:         %s\n  platform:   %s\n",
		i.Version, i.Commit, i.BuildDate, i.GoVersion, i.Platform)
}
