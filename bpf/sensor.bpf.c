// SPDX-License-Identifier: Apache-2.0
/*
 * Bulwark node sensor: process lifecycle (exec with arguments and the types
 * of its standard file descriptors, fork, exit), outbound TCP connections
 * and DNS queries, each written as one record into a ring buffer that the Go
 * loader in internal/sensor/probe decodes. Only BTF-enabled tracepoints
 * (tp_btf) are used: they load on kernels that refuse kprobes, fentry and LSM
 * programs, and their arguments are typed, so CO-RE relocates every read.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define DNS_PORT 53
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define TCP_SYN_SENT 2

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

#define COMM_LEN 16
#define CGROUP_LEN 64
#define FILENAME_LEN 256
#define ARGS_LEN 1024
#define DNS_LEN 256

enum event_kind {
	EVENT_EXEC = 1,
	EVENT_FORK = 2,
	EVENT_EXIT = 3,
	EVENT_DNS = 4,
	EVENT_CONNECT = 5,
};

enum event_flag {
	FLAG_DRIFT = 1,
	FLAG_ARGS_TRUNCATED = 2,
};

enum file_type {
	FILE_NONE = 0,
	FILE_REG = 1,
	FILE_PIPE = 2,
	FILE_CHAR = 3,
	FILE_TCP = 4,
	FILE_UDP = 5,
	FILE_UNIX = 6,
	FILE_SOCKET = 7,
	FILE_OTHER = 8,
};

/*
 * The wire format shared with internal/sensor/probe/event.go: keep both in
 * step (the Go test compares the sizes against the bpf2go-generated types).
 * Every record starts with struct event; fork, exit and connect records are
 * just that, exec and DNS records carry a data area after it, so that a
 * fork costs the ring 160 bytes, not the 1.4 KiB an exec needs.
 * remote_family is AF_INET or AF_INET6 when remote_addr (network order) and
 * remote_port (host order) hold a peer.
 */
struct event {
	__u8 kind;
	__u8 flags;
	__u16 data_len;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 mntns;
	__u32 netns;
	__u8 stdio[3];
	__u8 remote_family;
	__u64 ts;
	__u64 cgroup_id;
	char comm[COMM_LEN];
	char cgroup[CGROUP_LEN];
	__u8 remote_addr[16];
	__u16 remote_port;
	__u16 _pad1;
	__u32 _pad2;
};

/*
 * data: the filename (at most FILENAME_LEN bytes with its NUL), then up to
 * ARGS_LEN bytes of the argument block (NUL-separated, as execve laid it
 * out); data_len covers both.
 */
struct exec_event {
	struct event h;
	__u8 data[FILENAME_LEN + ARGS_LEN];
};

/* data: data_len bytes of the UDP payload. */
struct dns_event {
	struct event h;
	__u8 data[DNS_LEN];
};

/*
 * The layout as event.go decodes it. The compiler checks these against the
 * structs above and event_test.go checks them against the Go constants, so
 * neither side can drift alone.
 */
#define LAYOUT(type, field, off) \
	_Static_assert(__builtin_offsetof(type, field) == off, #type "." #field " moved")
#define SIZE(type, size) _Static_assert(sizeof(type) == size, #type " resized")
LAYOUT(struct event, kind, 0);
LAYOUT(struct event, flags, 1);
LAYOUT(struct event, data_len, 2);
LAYOUT(struct event, pid, 4);
LAYOUT(struct event, tgid, 8);
LAYOUT(struct event, ppid, 12);
LAYOUT(struct event, uid, 16);
LAYOUT(struct event, mntns, 20);
LAYOUT(struct event, netns, 24);
LAYOUT(struct event, stdio, 28);
LAYOUT(struct event, remote_family, 31);
LAYOUT(struct event, ts, 32);
LAYOUT(struct event, cgroup_id, 40);
LAYOUT(struct event, comm, 48);
LAYOUT(struct event, cgroup, 64);
LAYOUT(struct event, remote_addr, 128);
LAYOUT(struct event, remote_port, 144);
SIZE(struct event, 152);
LAYOUT(struct exec_event, data, 152);
SIZE(struct exec_event, 1432);
LAYOUT(struct dns_event, data, 152);
SIZE(struct dns_event, 408);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* drops counts failed ring buffer reservations: events lost while full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * cgroup_v1_name reads the task's memory controller cgroup name: on a
 * cgroup v1 host the unified hierarchy leaves containers at its root, and
 * runtimes put every container in a memory cgroup of its own.
 */
static __always_inline void cgroup_v1_name(struct event *e, struct task_struct *t)
{
	struct cgroup_subsys_state *css;
	struct css_set *cs;
	const char *cg;
	int id;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	cs = BPF_CORE_READ(t, cgroups);
	if (!cs || bpf_core_read(&css, sizeof(css), &cs->subsys[id]) || !css)
		return;
	cg = BPF_CORE_READ(css, cgroup, kn, name);
	if (cg)
		bpf_probe_read_kernel_str(&e->cgroup, sizeof(e->cgroup), cg);
}

/*
 * fill_task fills the fields every event has from task t: current, or for
 * fork the new child, which shares current's credentials and cgroup (read
 * from current by the helpers) at this point.
 */
static __always_inline void fill_task(struct event *e, struct task_struct *t)
{
	const char *cg;

	e->ts = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(t, pid);
	e->tgid = BPF_CORE_READ(t, tgid);
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	e->netns = BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
	cg = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, name);
	if (cg)
		bpf_probe_read_kernel_str(&e->cgroup, sizeof(e->cgroup), cg);
	if (e->cgroup[0] == 0)
		cgroup_v1_name(e, t);
}

/*
 * reserve takes size bytes of the ring (a constant at each call site, as
 * the verifier requires) and clears the header; a data area is written up
 * to data_len only, and the reader looks no further. A full ring is
 * counted in drops.
 */
static __always_inline struct event *reserve(__u8 kind, __u64 size)
{
	struct event *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&drops, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	return e;
}

/*
 * submit wakes the reader only once a quarter of the ring is filled; the
 * reader polls for the rest. A wakeup per event (irq_work) cost more than
 * the program itself on a virtual machine: 19us instead of 6us per exec,
 * 3.4us instead of 0.6us per DNS packet (bpf_stats).
 */
static __always_inline void submit(void *e)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	bpf_ringbuf_submit(e, avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/*
 * is_upper reports whether inode lives in an overlayfs upper (writable)
 * layer: the overlay inode's __upperdentry is set once the file was created
 * or copied up there, which for a container means it was not in the image.
 */
static __always_inline bool is_upper(struct inode *inode)
{
	struct ovl_inode *oi;

	if (!inode || BPF_CORE_READ(inode, i_sb, s_magic) != OVERLAYFS_SUPER_MAGIC)
		return false;
	oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);
	return BPF_CORE_READ(oi, __upperdentry) != 0;
}

/*
 * sock_remote records sk's peer in e, when sk is an inet socket with one.
 * A v4-mapped IPv6 peer is kept as such; the reader unmaps it.
 */
static __always_inline bool sock_remote(struct event *e, struct sock *sk, __u16 family)
{
	__u16 port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	if (port == 0)
		return false;
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e->remote_addr, &a, sizeof(a));
	} else if (family == AF_INET6 && bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		if (bpf_core_read(e->remote_addr, sizeof(e->remote_addr), &sk->__sk_common.skc_v6_daddr))
			return false;
	} else {
		return false;
	}
	e->remote_family = family;
	e->remote_port = port;
	return true;
}

/*
 * file_type classifies f by its inode's mode and, for a socket, by the
 * family and protocol of its struct sock; the first connected TCP or UDP
 * socket's peer goes into e.
 */
static __always_inline __u8 file_type(struct event *e, struct file *f)
{
	struct socket *sock;
	struct sock *sk;
	__u16 mode, family, proto;

	mode = BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT;
	switch (mode) {
	case S_IFREG:
		return FILE_REG;
	case S_IFIFO:
		return FILE_PIPE;
	case S_IFCHR:
		return FILE_CHAR;
	case S_IFSOCK:
		break;
	default:
		return FILE_OTHER;
	}
	/* A socket file's private_data is its struct socket. */
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return FILE_SOCKET;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX)
		return FILE_UNIX;
	if (family != AF_INET && family != AF_INET6)
		return FILE_SOCKET;
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return FILE_SOCKET;
	if (!e->remote_family)
		sock_remote(e, sk, family);
	return proto == IPPROTO_TCP ? FILE_TCP : FILE_UDP;
}

/*
 * stdio_types fills e->stdio from t's file descriptors 0, 1 and 2. At
 * sched_process_exec close-on-exec descriptors are already closed, so
 * these are the new program's.
 */
static __always_inline void stdio_types(struct event *e, struct task_struct *t)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds;
	struct file *f;
	unsigned int max;

	if (!fdt)
		return;
	fds = BPF_CORE_READ(fdt, fd);
	max = BPF_CORE_READ(fdt, max_fds);
#pragma unroll
	for (int i = 0; i < 3; i++) {
		if (i >= max || bpf_core_read(&f, sizeof(f), &fds[i]) || !f)
			continue;
		e->stdio[i] = file_type(e, f);
	}
}

/*
 * exec_args appends the argument block from the new mm after the filename
 * (off bytes with its NUL): execve has just copied it to the new stack, so
 * the pages are present and bpf_probe_read_user needs no fault.
 */
static __always_inline void exec_args(struct exec_event *e, struct task_struct *t, __u64 off)
{
	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	unsigned long start, end;
	__u64 len;

	if (!mm)
		return;
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > ARGS_LEN) {
		len = ARGS_LEN;
		e->h.flags |= FLAG_ARGS_TRUNCATED;
	}
	/* Bounds on the registers the helper gets, as in sensor_dns. */
	barrier_var(off);
	if (off > FILENAME_LEN)
		return;
	barrier_var(len);
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	if (len == 0)
		return;
	if (bpf_probe_read_user(e->data + off, len, (void *)start)) {
		e->h.flags |= FLAG_ARGS_TRUNCATED;
		return;
	}
	e->h.data_len = off + len;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sensor_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_event *e = (void *)reserve(EVENT_EXEC, sizeof(struct exec_event));
	const char *filename;
	long n;

	if (!e)
		return 0;
	fill_task(&e->h, p);
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(&e->data, FILENAME_LEN, filename);
	if (n < 1) {
		e->data[0] = 0;
		n = 1;
	}
	e->h.data_len = n;
	exec_args(e, p, n);
	stdio_types(&e->h, p);
	/*
	 * For a script, file is already the interpreter: the script's own
	 * file is released before this tracepoint, so a dropped script run by
	 * an image's interpreter is not seen as drift.
	 */
	if (is_upper(BPF_CORE_READ(bprm, file, f_inode)))
		e->h.flags |= FLAG_DRIFT;
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sensor_fork, struct task_struct *parent, struct task_struct *child)
{
	struct event *e;

	/* A new thread is not a new process. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	e = reserve(EVENT_FORK, sizeof(struct event));
	if (!e)
		return 0;
	fill_task(e, child);
	e->ppid = BPF_CORE_READ(parent, tgid);
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sensor_exit, struct task_struct *p)
{
	struct event *e;

	/* Only the thread group leader's exit ends the process. */
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0;
	e = reserve(EVENT_EXIT, sizeof(struct event));
	if (!e)
		return 0;
	fill_task(e, p);
	submit(e);
	return 0;
}

struct udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
};

/*
 * sensor_dns copies the payload of outgoing UDP datagrams to port 53. The
 * packet is read from the skb's linear area (head + network_header up to
 * tail); IPv6 extension headers are not walked, so only datagrams whose
 * first next-header is UDP are seen.
 */
SEC("tp_btf/net_dev_queue")
int BPF_PROG(sensor_dns, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 nh = BPF_CORE_READ(skb, network_header);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u32 l4, off, n;
	__u64 len;
	struct udphdr udp;
	struct dns_event *e;
	__u8 b[8];

	/*
	 * Only packets a local socket sends: a packet forwarded from a pod's
	 * network namespace has been orphaned on the way (its socket is
	 * dropped crossing namespaces) and is queued again on the host's
	 * devices from softirq context, where the current task is not the
	 * sender. The pod's own queueing on its interface, in the sender's
	 * context, is the one reported.
	 */
	if (!BPF_CORE_READ(skb, sk))
		return 0;
	if (proto == ETH_P_IP) {
		if (bpf_probe_read_kernel(b, 8, head + nh))
			return 0;
		/* Not UDP, or a non-first fragment. */
		if (b[0] >> 4 != 4 || (((__u16)b[6] << 8 | b[7]) & 0x1fff))
			return 0;
		if (bpf_probe_read_kernel(b, 1, head + nh + 9) || b[0] != IPPROTO_UDP)
			return 0;
		if (bpf_probe_read_kernel(b, 1, head + nh))
			return 0;
		l4 = nh + (b[0] & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_probe_read_kernel(b, 8, head + nh))
			return 0;
		if (b[0] >> 4 != 6 || b[6] != IPPROTO_UDP)
			return 0;
		l4 = nh + 40;
	} else {
		return 0;
	}
	if (bpf_probe_read_kernel(&udp, sizeof(udp), head + l4))
		return 0;
	if (udp.dest != bpf_htons(DNS_PORT))
		return 0;
	off = l4 + sizeof(udp);
	n = bpf_ntohs(udp.len);
	if (n < sizeof(udp) || off >= tail)
		return 0;
	n -= sizeof(udp);
	if (n > tail - off)
		n = tail - off;

	e = (void *)reserve(EVENT_DNS, sizeof(struct dns_event));
	if (!e)
		return 0;
	fill_task(&e->h, bpf_get_current_task_btf());
	/*
	 * A 64-bit copy behind a barrier keeps the bound check on the register
	 * the helper gets; clang otherwise re-extends the unchecked 32-bit n.
	 */
	len = n;
	barrier_var(len);
	if (len > DNS_LEN)
		len = DNS_LEN;
	if (len > 0 && bpf_probe_read_kernel(&e->data, len, head + off) == 0)
		e->h.data_len = len;
	submit(e);
	return 0;
}

/*
 * sensor_connect reports a TCP socket entering SYN_SENT: connect() (or a
 * TCP Fast Open sendmsg) in the calling task's context, once per
 * connection attempt. Watching SYNs in net_dev_queue instead would
 * attribute retransmitted SYNs (sent from a timer in softirq context) and
 * forwarded container traffic to whatever task the CPU was running.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sensor_connect, struct sock *sk, int oldstate, int newstate)
{
	struct event *e;

	if (newstate != TCP_SYN_SENT || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	e = reserve(EVENT_CONNECT, sizeof(struct event));
	if (!e)
		return 0;
	fill_task(e, bpf_get_current_task_btf());
	if (!sock_remote(e, sk, BPF_CORE_READ(sk, __sk_common.skc_family))) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	submit(e);
	return 0;
}
