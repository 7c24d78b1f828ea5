// SPDX-License-Identifier: Apache-2.0
/*
 * Bulwark node sensor: process lifecycle (exec, fork, exit) and DNS queries,
 * each written as one fixed-size struct event into a ring buffer that the Go
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
#define IPPROTO_UDP 17
#define DNS_PORT 53

#define COMM_LEN 16
#define CGROUP_LEN 64
#define DATA_LEN 256

enum event_kind {
	EVENT_EXEC = 1,
	EVENT_FORK = 2,
	EVENT_EXIT = 3,
	EVENT_DNS = 4,
};

/*
 * The wire format shared with internal/sensor/probe/event.go: keep both in
 * step (the Go test compares the sizes against the bpf2go-generated type).
 * data holds the NUL-terminated filename for exec and the UDP payload (of
 * data_len bytes) for DNS.
 */
struct event {
	__u8 kind;
	__u8 drift;
	__u16 data_len;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 mntns;
	__u32 netns;
	__u32 _pad;
	__u64 ts;
	__u64 cgroup_id;
	char comm[COMM_LEN];
	char cgroup[CGROUP_LEN];
	__u8 data[DATA_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

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

static __always_inline struct event *reserve(__u8 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
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
static __always_inline void submit(struct event *e)
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

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sensor_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct event *e = reserve(EVENT_EXEC);
	const char *filename;

	if (!e)
		return 0;
	fill_task(e, p);
	filename = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(&e->data, sizeof(e->data), filename);
	/*
	 * For a script, file is already the interpreter: the script's own
	 * file is released before this tracepoint, so a dropped script run by
	 * an image's interpreter is not seen as drift.
	 */
	e->drift = is_upper(BPF_CORE_READ(bprm, file, f_inode));
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
	e = reserve(EVENT_FORK);
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
	e = reserve(EVENT_EXIT);
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
	struct event *e;
	__u8 b[8];

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

	e = reserve(EVENT_DNS);
	if (!e)
		return 0;
	fill_task(e, bpf_get_current_task_btf());
	/*
	 * A 64-bit copy behind a barrier keeps the bound check on the register
	 * the helper gets; clang otherwise re-extends the unchecked 32-bit n.
	 */
	len = n;
	barrier_var(len);
	if (len > DATA_LEN)
		len = DATA_LEN;
	if (len > 0 && bpf_probe_read_kernel(&e->data, len, head + off) == 0)
		e->data_len = len;
	submit(e);
	return 0;
}
