//go:build !unix || openbsd || netbsd || solaris || illumos

package health

func diskFree(string) (uint64, error) { return 0, ErrUnsupported }
