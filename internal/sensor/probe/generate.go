package probe

// The C lives in bpf/ at the repository root; its bpf2go output
// (sensor_bpfel.go and sensor_bpfel.o) is committed so that building needs
// no clang. `make generate-bpf` regenerates it with Debian's clang-14.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -cflags "-O2 -g -Wall -Werror" sensor ../../../bpf/sensor.bpf.c -- -I../../../bpf
