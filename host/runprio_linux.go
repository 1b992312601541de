package host

import "syscall"

// threadID is the calling thread's id, for lowerPriority.
func threadID() int { return syscall.Gettid() }

// lowerPriority raises thread tid's nice value by demotedNice (at most to
// 19, the lowest priority), relative to what it is: a server the operator
// started under nice keeps its place below other work. Raising a nice
// value needs no privilege; lowering it again does, so a demoted thread
// is never given back to Go's pool (see runClock.pin).
func lowerPriority(tid int) {
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return
	}
	nice := 20 - prio // the system call answers 20 - nice, so that it is never negative
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(19, nice+demotedNice))
}
