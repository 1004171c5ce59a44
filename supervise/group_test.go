package supervise_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/supervise"
)

// instances counts how many runs of each child are live at once.
type instances struct {
	mu       sync.Mutex
	live     map[string]int
	max      map[string]int
	runs     map[string]int
	lastTime map[string]time.Time
}

func newInstances() *instances {
	return &instances{live: map[string]int{}, max: map[string]int{}, runs: map[string]int{}, lastTime: map[string]time.Time{}}
}

// service runs until cancelled, except that its run number n ends with
// errBoom once kicks[n] is closed.
func (in *instances) service(name string, kicks map[int]chan struct{}) supervise.Service {
	return named(name, func(ctx context.Context) error {
		in.mu.Lock()
		in.runs[name]++
		run := in.runs[name]
		in.live[name]++
		in.max[name] = max(in.max[name], in.live[name])
		in.lastTime[name] = time.Now()
		in.mu.Unlock()
		defer func() {
			in.mu.Lock()
			in.live[name]--
			in.mu.Unlock()
		}()
		if kick, ok := kicks[run]; ok {
			select {
			case <-kick:
				return errBoom
			case <-ctx.Done():
				return nil
			}
		}
		<-ctx.Done()
		return nil
	})
}

// Two children of a one-for-all supervisor fail at the same moment: the
// group is restarted, and no child ever runs twice at once.
func TestOneForAllSimultaneousFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := supervise.New(supervise.Config{Name: "root", Strategy: supervise.OneForAll})
		require.NoError(t, err)
		in := newInstances()
		kick := make(chan struct{})
		fail := map[int]chan struct{}{1: kick}
		for _, c := range []struct {
			name  string
			kicks map[int]chan struct{}
		}{{"a", fail}, {"b", nil}, {"c", fail}} {
			_, err := s.Add(in.service(c.name, c.kicks), supervise.ChildConfig{})
			require.NoError(t, err)
		}
		stop := serve(s)
		synctest.Wait()
		close(kick)
		time.Sleep(time.Minute)
		synctest.Wait()
		in.mu.Lock()
		assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, in.max)
		assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, in.live)
		assert.GreaterOrEqual(t, in.runs["b"], 2)
		in.mu.Unlock()
		for _, c := range s.Snapshot().Children {
			assert.Equal(t, supervise.StateRunning, c.State, c.Name)
		}
		require.NoError(t, stop())
	})
}

// The second quick failure in a rest-for-one group waits the failed child's
// backoff before the group starts again; the children before it run on.
func TestRestForOneBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s, err := supervise.New(supervise.Config{Name: "root", Strategy: supervise.RestForOne, Backoff: constantBackoff(5 * time.Second), Hook: rec.hook})
		require.NoError(t, err)
		in := newInstances()
		kick1, kick2 := make(chan struct{}), make(chan struct{})
		_, err = s.Add(in.service("a", nil), supervise.ChildConfig{})
		require.NoError(t, err)
		_, err = s.Add(in.service("b", map[int]chan struct{}{1: kick1, 2: kick2}), supervise.ChildConfig{})
		require.NoError(t, err)
		_, err = s.Add(in.service("c", nil), supervise.ChildConfig{})
		require.NoError(t, err)
		stop := serve(s)
		synctest.Wait()
		close(kick1)
		synctest.Wait()
		begin := time.Now()
		close(kick2)
		synctest.Wait()
		assert.Equal(t, supervise.StateBackingOff, s.Snapshot().Children[1].State)
		assert.Equal(t, supervise.StateBackingOff, s.Snapshot().Children[2].State)
		time.Sleep(time.Minute)
		synctest.Wait()

		in.mu.Lock()
		assert.Equal(t, map[string]int{"a": 1, "b": 3, "c": 3}, in.runs)
		assert.Equal(t, 5*time.Second, in.lastTime["b"].Sub(begin))
		assert.Equal(t, 5*time.Second, in.lastTime["c"].Sub(begin))
		in.mu.Unlock()
		assert.Equal(t, []string{
			"started:a", "started:b", "started:c",
			"stopped:c", "started:b", "started:c", // at once
			"stopped:c", "started:b", "started:c", // after 5s
			"stopped:c", "stopped:b", "stopped:a",
		}, func() []string {
			require.NoError(t, stop())
			return rec.trace(supervise.EventStarted, supervise.EventStopped)
		}())
	})
}
