/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types the sensor reads, declared by hand instead of a
 * multi-megabyte vmlinux.h. Every struct carries preserve_access_index, so
 * clang emits CO-RE relocations and libbpf/cilium-ebpf fix the field offsets
 * against the running kernel's BTF at load time: only the fields named here
 * have to exist, in any order, at any offset.
 */
#ifndef BULWARK_VMLINUX_MIN_H
#define BULWARK_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef int pid_t;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};
/* Ring buffer flags and queries, from uapi/linux/bpf.h. */
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
};

/* Values are placeholders: bpf_core_enum_value relocates them. */
enum cgroup_subsys_id {
	memory_cgrp_id = 4,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct net {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
	struct net *net_ns;
};

struct kernfs_node {
	const char *name;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

/* Only the length of subsys is config-dependent; indexes are relocated. */
struct css_set {
	struct cgroup_subsys_state *subsys[16];
	struct cgroup *dfl_cgrp;
};

/* arg_start and arg_end sit in an anonymous struct: CO-RE finds them. */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct file;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	char comm[16];
	struct mm_struct *mm;
	struct files_struct *files;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
};

struct dentry;

/* fs/overlayfs/ovl_entry.h: the overlay inode embeds the VFS inode. */
struct ovl_inode {
	struct inode vfs_inode;
	struct dentry *__upperdentry;
};

struct file {
	struct inode *f_inode;
	void *private_data;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

/*
 * skc_daddr and skc_dport are members of anonymous unions in the kernel's
 * struct; skc_v6_daddr exists only with CONFIG_IPV6 (checked with
 * bpf_core_field_exists).
 */
struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
};

/* sk_protocol is a u16 since Linux 5.6 (a bitfield before). */
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
};

struct socket {
	struct sock *sk;
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

struct sk_buff {
	/* In the kernel, inside an anonymous union; CO-RE finds it by name. */
	struct sock *sk;
	unsigned int len;
	unsigned int data_len;
	__be16 protocol;
	__u16 network_header;
	unsigned int tail;
	unsigned char *head;
};

#pragma clang attribute pop

#endif /* BULWARK_VMLINUX_MIN_H */
