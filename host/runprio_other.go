//go:build !linux

package host

// Threads keep their priority where the host cannot set one thread's.
func threadID() int     { return 0 }
func lowerPriority(int) {}
