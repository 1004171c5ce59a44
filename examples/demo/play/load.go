package play

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Load is a load generator: GET requests at a fixed rate, recording each outcome.
type Load struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup
	tr   *http.Transport

	mu   sync.Mutex
	recs []rec
}

type rec struct {
	at  time.Time
	ok  bool
	why string // the failure
}

// StartLoad sends rps requests a second to url until Stop.
func StartLoad(url string, rps int) *Load {
	l := &Load{url: url, stop: make(chan struct{}), tr: &http.Transport{MaxIdleConnsPerHost: 64}}
	c := &http.Client{Transport: l.tr, Timeout: 5 * time.Second}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(time.Second / time.Duration(rps))
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				at := time.Now()
				ok, why := false, ""
				resp, err := c.Get(l.url)
				if err == nil {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
					if !ok {
						why = resp.Status + ": " + strings.TrimSpace(string(b))
					}
				} else {
					why = err.Error()
				}
				l.mu.Lock()
				l.recs = append(l.recs, rec{at, ok, why})
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

// Stop stops the load and waits for the requests in flight.
func (l *Load) Stop() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	l.wg.Wait()
	l.tr.CloseIdleConnections()
}

// Between returns the requests sent in [from, to) and how many succeeded.
func (l *Load) Between(from, to time.Time) (total, ok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if !r.at.Before(from) && r.at.Before(to) {
			total++
			if r.ok {
				ok++
			}
		}
	}
	return total, ok
}

// Failures returns the failures of the requests sent in [from, to), counted by
// reason.
func (l *Load) Failures(from, to time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, r := range l.recs {
		if !r.ok && !r.at.Before(from) && r.at.Before(to) {
			out[r.why]++
		}
	}
	return out
}
