// Package probe is the kernel side of Bulwark's node sensor: it loads the
// eBPF programs in bpf/sensor.bpf.c, attaches the ones the running kernel
// accepts, and decodes what they report into Events.
//
// Hooks, all BTF-enabled tracepoints (tp_btf) writing one record each into
// a BPF ring buffer:
//
//   - sched_process_exec: pid, tgid, ppid, uid, comm, the exec'd filename
//     (bounded to 255 bytes), the arguments from the new mm's
//     arg_start..arg_end (bounded to 1 KiB, ArgsTruncated beyond), what
//     file descriptors 0, 1 and 2 are (regular file, pipe, character
//     device, TCP/UDP/Unix/other socket, other) and the peer of the first
//     connected TCP or UDP one (a reverse shell's listener), cgroup id and
//     cgroup name (v2, or the v1 memory controller's where v2 is the root),
//     mount and network namespace inodes, and Drift: the executable sits in
//     an overlayfs upper (writable) layer, i.e. was not part of the image.
//     For a script the executable is its interpreter: the script's own
//     file is released before the tracepoint, so a dropped script is not
//     drift.
//   - sched_process_fork and sched_process_exit: the same task fields, for
//     new processes and exiting thread-group leaders (threads are skipped).
//   - net_dev_queue: outgoing UDP datagrams to port 53 over IPv4 or IPv6
//     (no IPv6 extension headers), up to 256 bytes of DNS payload with the
//     sending task's fields. Only packets that still have their socket:
//     one forwarded from a pod's namespace was orphaned on the way and is
//     queued again from softirq context, with an unrelated task current.
//   - inet_sock_set_state: a TCP socket entering SYN_SENT, i.e. connect(),
//     with the connecting task's fields and the destination. Outgoing SYNs
//     seen in net_dev_queue would be attributed to the wrong task when
//     retransmitted from a timer or forwarded for a container.
//
// Fork, exit and connect records are a 152-byte header; exec and DNS
// records append their data area, so a burst of forks does not take an
// exec's 1.4 KiB each. Events lost to a full ring are counted per CPU in
// the kernel and summed by Drops.
//
// Kprobes, fentry and LSM programs are refused on some kernels Bulwark runs
// on, so only tp_btf programs are used; each is loaded and attached on its
// own, the ones that fail are logged and skipped, and Hooks says what is
// attached. Opening needs root (or CAP_BPF and CAP_PERFMON).
//
// The programs wake the reader only when a quarter of the ring is full and
// Read polls it every 50ms otherwise: on a virtual machine a wakeup per
// event made an exec cost 19µs instead of 6µs, a DNS packet 3.4µs instead
// of 0.6µs.
//
// The package owns loading, attaching and decoding; what the events mean
// (policy, alerting, container attribution) belongs to its callers.
//
// The C is compiled by bpf2go and its output (sensor_bpfel.go and
// sensor_bpfel.o) is committed, so building needs no clang. Regenerate it
// after changing bpf/ with `make generate-bpf` (clang-14, llvm-strip-14 and
// libbpf-dev from Debian).
package probe
