package fallback

import "log/slog"

// Options configure Open.
type Options struct {
	// Logger receives what was attached and what was not; slog.Default()
	// when nil.
	Logger *slog.Logger
	// ReceiveBuffer is the netlink socket's receive buffer in bytes, what
	// absorbs a burst of process events; 0 means DefaultReceiveBuffer.
	ReceiveBuffer int
	// Queue is how many enriched events may wait for Read; 0 means
	// DefaultQueue. Events are enriched as they arrive, while their
	// processes still exist, not when they are read.
	Queue int
	// HostRoot is where the file system of the mount namespace that
	// mounted the containers' overlays is visible: overlay upperdir paths
	// are the mounter's. "" means "/"; a sensor in a container that shares
	// the host's pid namespace sets "/proc/1/root".
	HostRoot string
	// NoFanotify leaves fanotify out: drift is then decided on the
	// executable alone, and dropped scripts are not seen.
	NoFanotify bool
}

// Defaults for Options.
const (
	DefaultReceiveBuffer = 4 << 20
	DefaultQueue         = 4096
)

// Hook names, as Hooks returns them.
const (
	HookProcConnector = "netlink/proc_connector"
	HookFanotify      = "fanotify/open_exec"
)
