//go:build unix

package auditlog

import (
	"os"
	"syscall"
)

// inode identifies a file across renames.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
