// Package health is part of selfheal. It is not built yet; see the repository's issues.
package health
