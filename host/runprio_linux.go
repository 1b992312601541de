package host

import "syscall"

// threadID is the calling thread's id, for lowerPriority.
func threadID() int { return syscall.Gettid() }

// lowerPriority gives thread tid the nice value demotedNice. Raising a nice
// value needs no privilege; lowering it again does, so a demoted thread
// is never given back to Go's pool (see runClock.pin).
func lowerPriority(tid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, demotedNice) }
