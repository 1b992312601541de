package main

// Ignored is in a test file.
type Ignored struct {
	// Field is ignored.
	Field int
}
