package supervise

import (
	"bytes"
	"runtime"
	"strconv"
)

const maxStack = 1 << 20

// curGoroutineID returns the id of the calling goroutine, parsed from the
// header of its stack trace ("goroutine 123 [running]:"). It is called once per
// child goroutine, so that an abandoned child's stack can be found later.
func curGoroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	return parseGoroutineID(buf[:n])
}

func parseGoroutineID(b []byte) uint64 {
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return 0
	}
	id, err := strconv.ParseUint(string(b[:i]), 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// goroutineStack returns the stack of goroutine id, or nil if it is not found.
// It stops the world briefly (runtime.Stack with all set), which is fine for
// the rare abandoned child.
func goroutineStack(id uint64) []byte {
	if id == 0 {
		return nil
	}
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 16*maxStack {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	head := []byte("goroutine " + strconv.FormatUint(id, 10) + " [")
	for len(buf) > 0 {
		end := bytes.Index(buf, []byte("\n\n"))
		block := buf
		if end >= 0 {
			block, buf = buf[:end], buf[end+2:]
		} else {
			buf = nil
		}
		if bytes.HasPrefix(block, head) {
			return bytes.Clone(block)
		}
	}
	return nil
}
