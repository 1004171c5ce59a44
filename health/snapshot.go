package health

import "time"

// Snapshot is the state of a [Registry] at one moment, as [Registry.Snapshot]
// returns it: the last result of every check, whatever its age.
type Snapshot struct {
	// Status is the status of the health document: the worst status among all
	// checks, and fail while draining.
	Status Status
	// Draining reports whether the registry is draining (see [Registry.SetDraining]).
	Draining bool
	// Checks holds one entry per registered check, sorted by name.
	Checks []CheckSnapshot
}

// CheckSnapshot is the last result of one check.
type CheckSnapshot struct {
	Name  string
	Kinds Kind
	// Status is the check's status after its thresholds and NonCritical. Before the
	// first run ends it is fail (warn for a NonCritical check), and Pending is true.
	Status Status
	// Pending reports that no run of the check has ended yet.
	Pending bool
	// Output is the error text of the last run ("" when it passed).
	Output string
	// Time is when the last run ended; zero while Pending.
	Time time.Time
	// Duration is how long the last run took.
	Duration time.Duration
	// Results are the check's entries in the health document.
	Results []CheckResult
}

// StatusFor returns what a probe of kinds (zero means every check) would answer
// from s without running anything: the worst status among the checks of those kinds,
// fail for readiness while draining, and pass for a liveness probe alone of a check
// that has not run yet (see the package documentation).
func (s Snapshot) StatusFor(kinds Kind) Status {
	if kinds == 0 {
		kinds = AllKinds
	}
	st := StatusPass
	for _, c := range s.Checks {
		if c.Kinds&kinds == 0 || (c.Pending && kinds == Liveness) {
			continue
		}
		st = worse(st, c.Status)
	}
	if kinds&Readiness != 0 && s.Draining {
		st = StatusFail
	}
	return st
}

// Snapshot returns the last known result of every check without running any: a
// stale on-demand check shows its old result, a periodic check its last run, a check
// that has not run yet shows as Pending. It has no side effects (no check runs, no
// listener is called), is cheap, and is safe for concurrent use and from a
// status-change listener. [Registry.Evaluate] and [Registry.Document] run stale
// checks first, as probes do.
func (r *Registry) Snapshot() Snapshot {
	list := r.set.Load().list
	s := Snapshot{Status: StatusPass, Draining: r.draining.Load(), Checks: make([]CheckSnapshot, len(list))}
	for i, e := range list {
		res := e.cur.Load()
		s.Status = worse(s.Status, res.status)
		s.Checks[i] = CheckSnapshot{
			Name:     e.c.Name,
			Kinds:    e.c.Kinds,
			Status:   res.status,
			Pending:  res.pending,
			Output:   res.output,
			Time:     res.at,
			Duration: res.dur,
			Results:  append([]CheckResult(nil), res.entries...),
		}
	}
	if s.Draining {
		s.Status = StatusFail
	}
	return s
}
