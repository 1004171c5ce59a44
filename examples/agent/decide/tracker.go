package decide

import (
	"fmt"
	"time"
)

// Health is the agent's verdict on one instance.
type Health int

// Verdicts.
const (
	// Starting: within the start-up grace period, not yet seen live.
	Starting Health = iota
	// Healthy: live by at least SuccessThreshold consecutive probes.
	Healthy
	// Suspect: failing, but below FailureThreshold or MinUnhealthy.
	Suspect
	// Unhealthy: failed FailureThreshold consecutive probes for at least
	// MinUnhealthy; the agent replaces it.
	Unhealthy
)

func (h Health) String() string {
	switch h {
	case Starting:
		return "starting"
	case Healthy:
		return "healthy"
	case Suspect:
		return "suspect"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// TrackerConfig configures a Tracker. The zero value means the documented defaults.
type TrackerConfig struct {
	// StartupGrace is how long after its start an instance's failed probes do not
	// count, unless it was already seen live; <= 0 means 10 s.
	StartupGrace time.Duration
	// FailureThreshold is the number of consecutive failed liveness probes that make
	// an instance unhealthy; <= 0 means 3.
	FailureThreshold int
	// SuccessThreshold is the number of consecutive successful probes that make a
	// starting or failing instance healthy again; <= 0 means 1.
	SuccessThreshold int
	// MinUnhealthy is how long an instance must have been failing (since its first
	// failure in the current run of failures) before it is unhealthy; <= 0 means no
	// minimum.
	MinUnhealthy time.Duration
}

func (c TrackerConfig) withDefaults() TrackerConfig {
	if c.StartupGrace <= 0 {
		c.StartupGrace = 10 * time.Second
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	if c.SuccessThreshold <= 0 {
		c.SuccessThreshold = 1
	}
	return c
}

// Probe is the result of probing an instance once.
type Probe struct {
	Live  bool   // the liveness endpoint answered 200 in time
	Ready bool   // the readiness endpoint answered 200 in time
	Err   string // why not, for the event log
}

// Tracker follows one instance through its probes. The zero value is not usable;
// create it with NewTracker.
type Tracker struct {
	cfg       TrackerConfig
	born      time.Time
	state     Health
	seenLive  bool
	fails     int
	succs     int
	failSince time.Time
	ready     bool
	lastErr   string
}

// NewTracker returns the tracker of an instance started at born.
func NewTracker(cfg TrackerConfig, born time.Time) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), born: born, state: Starting}
}

// Observe records probe p taken at now and returns the new verdict and whether it
// changed.
func (t *Tracker) Observe(now time.Time, p Probe) (Health, bool) {
	prev := t.state
	t.ready = p.Live && p.Ready
	if p.Live {
		t.fails = 0
		t.failSince = time.Time{}
		t.succs++
		if t.succs >= t.cfg.SuccessThreshold {
			t.state = Healthy
			t.seenLive = true
		}
	} else {
		t.lastErr = p.Err
		t.succs = 0
		inGrace := !t.seenLive && now.Sub(t.born) < t.cfg.StartupGrace
		if !inGrace {
			if t.fails == 0 {
				t.failSince = now
			}
			t.fails++
			switch {
			case t.fails >= t.cfg.FailureThreshold && now.Sub(t.failSince) >= t.cfg.MinUnhealthy:
				t.state = Unhealthy
			case t.state != Unhealthy:
				t.state = Suspect
			}
		}
	}
	if t.state != Healthy {
		t.ready = false
	}
	return t.state, t.state != prev
}

// Health returns the current verdict.
func (t *Tracker) Health() Health { return t.state }

// Ready reports whether the instance should receive traffic: healthy and ready by
// its last probe.
func (t *Tracker) Ready() bool { return t.ready }

// FailingSince is the time of the first failure of the current run of failures, or
// the zero time.
func (t *Tracker) FailingSince() time.Time { return t.failSince }

// LastError is the error of the last failed probe.
func (t *Tracker) LastError() string { return t.lastErr }

// InGrace reports whether the instance is still in its start-up grace period at now.
func (t *Tracker) InGrace(now time.Time) bool {
	return !t.seenLive && now.Sub(t.born) < t.cfg.StartupGrace
}
