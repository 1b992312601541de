//go:build !wasip1

package main

// Excluded is not built for wasip1.
type Excluded struct {
	// Field is not built for wasip1.
	Field int
}
