package main

// Stale is a stale generated file the overlay replaces.
type Stale struct {
	// Field is stale.
	Field int
}
