//go:build !race

package heal_test

const raceEnabled = false
