// Package fallback is the node sensor's event source for kernels where no
// eBPF program may be loaded. It produces the same probe.Events as the
// eBPF probe, from two kernel interfaces that need no BPF:
//
//   - the netlink proc connector (NETLINK_CONNECTOR, CN_IDX_PROC), which
//     reports fork, exec and exit with pids only. Each event is enriched
//     from /proc/<pid> as soon as it arrives: the executable, arguments
//     (bounded to 1 KiB like the probe's), comm, real uid, parent, cgroup,
//     mount and network namespaces, and what standard descriptors 0-2 are
//     (sockets looked up in the process's /proc/<pid>/net/* tables, with the
//     peer of the first connected TCP or UDP one). A process that exits
//     before /proc is read yields the fields read so far, the rest left
//     zero; the stream never fails for it, and Incomplete counts such
//     forks and execs. Netlink overruns (ENOBUFS) count as Drops.
//   - fanotify (FAN_CLASS_NOTIF, FAN_OPEN_EXEC) with a filesystem mark on
//     every overlayfs container root: it sees each file opened for
//     execution, which, unlike the exec tracepoint, includes a script run
//     by its interpreter.
//
// Drift is decided in user space. For the executable (/proc/<pid>/exe) and
// every file fanotify saw the process open for execution since its
// previous exec, the mount holding the file is found in
// /proc/<pid>/mountinfo; when it is an overlayfs, the file's path is looked
// up under the mount's upperdir, component by component without following
// symlinks, so a hostile container cannot point the lookup elsewhere. A
// regular file there means the file was written after the container
// started, and the Exec is Drift. So a script dropped into a container and
// run through the image's /bin/sh is drift, which the eBPF probe misses;
// an executable deleted while running from an overlay (link count 0) is
// drift too, since only upper-layer files can really be unlinked.
//
// Marks are placed on the root filesystem of every process whose root is
// an overlayfs, when its first exec is seen, and at Open on every overlay
// mounted in the sensor's mount namespace (which includes containerd's
// rootfs mounts). The exec that reveals a new container root happens
// before its mark, so fanotify misses that one exec's files (its
// executable is still checked). When the proc connector's exec event
// arrives, every fanotify event of that exec is already queued (the kernel
// reports the open during execve, before the exec completes), so the
// fanotify queue is drained before the exec is enriched. Filename is the
// first file the process opened for execution when fanotify saw it (for a
// script: the script), otherwise /proc/<pid>/exe (for a script: its
// interpreter).
//
// Not available without BPF: DNS and Connect events (nothing here sees
// packets or socket calls), the exact path an exec was called with, the
// arguments of an exec followed by another before it is read (the
// process then shows the later program's arguments, and its executable
// when fanotify did not see the first), and
// the events of processes that exit before /proc is read beyond what the
// proc connector itself carries. Hooks names what is active:
// "netlink/proc_connector" and, where fanotify is permitted,
// "fanotify/open_exec". Opening needs root (CAP_NET_ADMIN for the proc
// connector, CAP_SYS_ADMIN for fanotify) in the initial user and pid
// namespaces, with the host's cgroup namespace for cgroup ids to match.
//
// The package owns the two kernel interfaces and reading /proc; what the
// events mean belongs to its callers.
package fallback
