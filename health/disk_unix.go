//go:build unix && !openbsd && !netbsd && !solaris && !illumos

package health

import "syscall"

// diskFree uses statfs; the build constraint leaves out the unix systems whose
// syscall package spells it differently (they get ErrUnsupported).
func diskFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
