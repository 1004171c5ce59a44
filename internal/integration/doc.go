// Package integration is a test-only module: tests of the library against real
// dependencies that are too heavy for the library's go.mod (an embedded pure-Go SQLite
// for the health package's SQL check, for example). Nothing imports it.
package integration
