package health

import "strings"

// ProbesHeader is the response header of the health document (the
// [Registry.DocumentHandler], /health) that carries what the liveness and readiness
// probes answer at the same moment, from the same runs of the same checks:
//
//	Selfheal-Probes: liveness=pass, readiness=fail
//
// A client that reads the document anyway (the agent in examples/agent probes each
// instance every second) so needs one request per probe rather than three: at a
// thousand instances that is two thousand requests a second fewer. The verdicts are
// the probes' own, draining included (readiness fails while the registry drains), and
// are sent to every caller: /livez and /readyz answer them to anyone too. Read it
// with [ParseProbes]; a document without it (another library's) is probed the usual
// way.
const ProbesHeader = "Selfheal-Probes"

// probesValues are the header's values by liveness and readiness status, built once.
var probesValues = func() map[[2]Status][]string {
	m := make(map[[2]Status][]string, 9)
	for _, l := range []Status{StatusPass, StatusWarn, StatusFail} {
		for _, r := range []Status{StatusPass, StatusWarn, StatusFail} {
			m[[2]Status{l, r}] = []string{"liveness=" + string(l) + ", readiness=" + string(r)}
		}
	}
	return m
}()

// ParseProbes reads a [ProbesHeader] value: the liveness and readiness statuses, each
// pass, warn or fail. It is strict: anything but the exact form the health handler
// writes (the two fields in either order, separated by a comma and optional spaces,
// each status one of the three, nothing else) gives ok false, and the caller probes
// the usual way.
func ParseProbes(v string) (liveness, readiness Status, ok bool) {
	if len(v) > 64 {
		return "", "", false
	}
	first, second, found := strings.Cut(v, ",")
	if !found {
		return "", "", false
	}
	for _, field := range [2]string{first, second} {
		key, val, found := strings.Cut(strings.TrimSpace(field), "=")
		if !found {
			return "", "", false
		}
		st := Status(val)
		if st != StatusPass && st != StatusWarn && st != StatusFail {
			return "", "", false
		}
		switch {
		case key == "liveness" && liveness == "":
			liveness = st
		case key == "readiness" && readiness == "":
			readiness = st
		default:
			return "", "", false
		}
	}
	return liveness, readiness, true
}
