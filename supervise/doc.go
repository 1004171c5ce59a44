// Package supervise is part of selfheal. It is not built yet; see the repository's issues.
package supervise
