package breaker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/selfheal-go/selfheal/breaker"
)

func names(snaps []breaker.Snapshot) []string {
	out := make([]string, len(snaps))
	for i, s := range snaps {
		out[i] = s.Name
	}
	return out
}

func TestGroupOneBreakerPerKey(t *testing.T) {
	var transitions []string
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "hosts", Breaker: breaker.Config{
		ConsecutiveFailures: 1,
		OnStateChange: func(name string, from, to breaker.State) {
			transitions = append(transitions, name+":"+from.String()+">"+to.String())
		},
	}})
	require.NoError(t, err)
	assert.Equal(t, "hosts", g.Name())

	a := g.Get("a.example")
	assert.Same(t, a, g.Get("a.example"))
	assert.Equal(t, "hosts/a.example", a.Name())
	b := g.Get("b.example")
	assert.NotSame(t, a, b)

	require.ErrorIs(t, g.Do(t.Context(), "b.example", fail), errBoom)
	require.ErrorIs(t, g.Do(t.Context(), "b.example", ok), breaker.ErrOpen)
	require.NoError(t, g.Do(t.Context(), "a.example", ok), "breakers are independent")

	states := g.Snapshot()
	assert.Equal(t, []string{"hosts/a.example", "hosts/b.example"}, names(states))
	assert.Equal(t, breaker.StateClosed, states[0].State)
	assert.Equal(t, breaker.StateOpen, states[1].State)
	assert.Equal(t, []string{"hosts/b.example:closed>open"}, transitions)
	assert.Equal(t, 2, g.Len())
}

func TestGroupMaxKeysEvictsLeastRecentlyUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.GroupConfig{Name: "g", MaxKeys: 8})
		require.NoError(t, err)
		for i := range 8 {
			g.Get(fmt.Sprint(i))
		}
		require.Equal(t, 8, g.Len())
		old := g.Get("0")
		// A ninth key evicts one eighth of MaxKeys, the least recently used: all were
		// used in the same generation, so any one of them.
		g.Get("8")
		assert.Equal(t, 8, g.Len())

		// Use every key but "1" in a later generation; the next eviction takes "1".
		live := map[string]bool{}
		for _, s := range g.Snapshot() {
			live[s.Name] = true
		}
		for k := range live {
			if k != "g/1" {
				g.Get(k[2:])
			}
		}
		g.Get("9")
		got := names(g.Snapshot())
		assert.Len(t, got, 8)
		if live["g/1"] {
			assert.NotContains(t, got, "g/1")
		}
		assert.Contains(t, got, "g/9")

		// An evicted breaker works for those who hold it; the group makes a new one.
		if !contains(got, "g/0") {
			assert.NotSame(t, old, g.Get("0"))
		}
		assert.NoError(t, old.Do(t.Context(), ok))
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestGroupIdleEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.GroupConfig{Name: "g", IdleTimeout: time.Minute})
		require.NoError(t, err)
		busy, idle := g.Get("busy"), g.Get("idle")
		require.NotSame(t, busy, idle)

		// Sweeps run when the group adds a key, as new keys do here, at most once per
		// IdleTimeout; a sweep evicts what it finds unused since the previous sweep.
		// Reading the states never evicts.
		for i := range 3 {
			time.Sleep(40 * time.Second)
			g.Get("busy")
			g.Get(fmt.Sprint("new", i))
			assert.Subset(t, names(g.Snapshot()), []string{"g/busy", "g/idle"})
		}
		time.Sleep(40 * time.Second)
		g.Get("busy")
		assert.Contains(t, names(g.Snapshot()), "g/idle", "Snapshot does not sweep")
		g.Get("new3")
		// 160s later: "idle" was not looked up since the sweep at 80s.
		assert.NotContains(t, names(g.Snapshot()), "g/idle")
		assert.Same(t, busy, g.Get("busy"))
		assert.NotSame(t, idle, g.Get("idle"))

		// Nothing younger than IdleTimeout is ever evicted.
		time.Sleep(59 * time.Second)
		g.Get("new4")
		assert.Subset(t, names(g.Snapshot()), []string{"g/busy", "g/idle"})
	})
}

func TestGroupDefaultIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.GroupConfig{Name: "g"})
		require.NoError(t, err)
		g.Get("k")
		time.Sleep(10 * time.Minute)
		g.Get("a")
		assert.Equal(t, []string{"g/a", "g/k"}, names(g.Snapshot()), "one IdleTimeout only starts the sweep")
		time.Sleep(10 * time.Minute)
		g.Get("b")
		assert.NotContains(t, names(g.Snapshot()), "g/k", "idle for 20 minutes")
	})
}

func TestGroupConcurrentUse(t *testing.T) {
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "g", MaxKeys: 16, Breaker: breaker.Config{ConsecutiveFailures: 3}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprint((i * (w + 1)) % 40)
				if i%7 == 0 {
					_ = g.Do(context.Background(), key, fail)
				} else {
					_ = g.Do(context.Background(), key, ok)
				}
				if i%500 == 0 {
					_ = g.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, g.Len(), 16)
}

func TestNewGroupRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		give breaker.GroupConfig
		want string
	}{
		{breaker.GroupConfig{MaxKeys: -2}, "GroupConfig.MaxKeys: is -2"},
		{breaker.GroupConfig{IdleTimeout: -time.Second}, "GroupConfig.IdleTimeout: is -1s"},
		{breaker.GroupConfig{Breaker: breaker.Config{FailureRate: 2}}, "Config.FailureRate: is 2"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := breaker.NewGroup(tt.give)
			require.ErrorIs(t, err, breaker.ErrInvalidConfig)
			var ce *breaker.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	g, err := breaker.NewGroup(breaker.GroupConfig{MaxKeys: breaker.Off, IdleTimeout: breaker.Off})
	require.NoError(t, err)
	assert.Equal(t, "breaker", g.Name(), "the default name")
	assert.Equal(t, "breaker/k", g.Get("k").Name())
}

func TestGroupGetAllocatesNothing(t *testing.T) {
	g, err := breaker.NewGroup(breaker.GroupConfig{Name: "g"})
	require.NoError(t, err)
	for i := range 100 {
		g.Get(fmt.Sprint("host-", i))
	}
	key := "host-42"
	assert.Zero(t, testing.AllocsPerRun(1000, func() { g.Get(key) }))
}

func TestDoAllocatesNothing(t *testing.T) {
	b, err := breaker.New(breaker.Config{Name: "a", ConsecutiveFailures: 1, OpenDuration: time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = b.Do(ctx, ok) }), "success")
	_ = b.Do(ctx, fail)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = b.Do(ctx, ok) }), "rejection")
}
