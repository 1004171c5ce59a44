package core

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// A restart backoff wakes the service's loop at its due time, not at the next
// probe round.
func TestBackoffWakesTheLoopWhenDue(t *testing.T) {
	cfg := newTestAgent(t).svcs["web"].cfg
	synctest.Test(t, func(t *testing.T) {
		s := newSvc(cfg)
		woken := func() bool {
			select {
			case <-s.wake:
				return true
			default:
				return false
			}
		}
		due := time.Now().Add(166 * time.Millisecond)
		wakeAt(s, due)
		time.Sleep(165 * time.Millisecond)
		synctest.Wait()
		assert.False(t, woken(), "not before it is due")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.True(t, woken(), "at the due time")
		assert.False(t, time.Now().Before(due), "a round at the wake-up finds the restart due")
	})
}
