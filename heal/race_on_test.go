//go:build race

package heal_test

// raceEnabled: the race detector is on (sync.Pool then drops some of what it is given).
const raceEnabled = true
