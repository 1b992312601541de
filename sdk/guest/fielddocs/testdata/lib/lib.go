// Package lib is not a main package.
package lib

// Config is documented.
type Config struct {
	// Verbose logs more.
	Verbose bool
}
