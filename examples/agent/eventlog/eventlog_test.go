package eventlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/examples/agent/eventlog"
)

func TestLogRingAndLines(t *testing.T) {
	var buf bytes.Buffer
	l := eventlog.New(&buf, 3)
	c, stop := l.Subscribe(10)
	for i := range 5 {
		l.Emit(eventlog.Event{Kind: eventlog.Observed, What: fmt.Sprint(i)})
	}
	stop()
	stop() // idempotent
	var got []string
	for _, e := range l.Recent(0) {
		got = append(got, e.What)
	}
	assert.Equal(t, []string{"2", "3", "4"}, got)
	assert.Len(t, l.Recent(2), 2)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	var e eventlog.Event
	require.NoError(t, json.Unmarshal([]byte(lines[4]), &e))
	assert.Equal(t, "4", e.What)
	assert.False(t, e.Time.IsZero())
	n := 0
	for range c {
		n++
	}
	assert.Equal(t, 5, n)
}

func ExampleLog() {
	l := eventlog.New(os.Stdout, 0)
	l.Emit(eventlog.Event{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Kind: eventlog.Observed, What: "crash",
		Service: "web", Instance: "web-2", Why: "exit status 2"})
	// Output:
	// {"time":"2026-01-01T00:00:00Z","kind":"observed","what":"crash","service":"web","instance":"web-2","why":"exit status 2"}
}
