package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/selfheal-go/selfheal/supervise"
)

// BenchmarkRestart measures one restart of a child that fails at once: the
// child signals each start on a buffered channel, the loop takes one start
// per iteration. internal/peerbench compares this with suture.
func BenchmarkRestart(b *testing.B) {
	for _, mode := range []string{"error", "panic"} {
		b.Run(mode, func(b *testing.B) {
			s, err := supervise.New(supervise.Config{Name: "bench", Backoff: supervise.NoBackoff, MaxRestarts: 1000, Period: time.Microsecond})
			if err != nil {
				b.Fatal(err)
			}
			started := make(chan struct{}, 1024)
			quit := make(chan struct{})
			errFail := errors.New("fail")
			_, err = s.Add(supervise.Func(func(ctx context.Context) error {
				select {
				case started <- struct{}{}:
				case <-quit:
					<-ctx.Done()
					return nil
				}
				if mode == "panic" {
					panic(errFail)
				}
				return errFail
			}), supervise.ChildConfig{Name: "flaky"})
			if err != nil {
				b.Fatal(err)
			}
			stop := serve(s)
			b.ReportAllocs()
			for b.Loop() {
				<-started
			}
			close(quit)
			if err := stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkSnapshot measures a snapshot of a tree of 64 children in 8 nested
// supervisors, read concurrently, as a health endpoint would.
func BenchmarkSnapshot(b *testing.B) {
	root, err := supervise.New(supervise.Config{Name: "root"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 8 {
		sub, err := supervise.New(supervise.Config{Name: fmt.Sprintf("sub-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for j := range 8 {
			if _, err := sub.Add(supervise.Func(blocker), supervise.ChildConfig{Name: fmt.Sprintf("w-%d", j)}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := root.Add(sub, supervise.ChildConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	stop := serve(root)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if len(root.Snapshot().Children) != 8 {
				b.Error("wrong status")
			}
		}
	})
	if err := stop(); err != nil {
		b.Fatal(err)
	}
}
