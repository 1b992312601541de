//go:build linux

package host

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileIdentity names fi's content as far as the file system can tell
// without reading it: device, inode, size, and modification and change
// times. The change time cannot be set from user space and moves on every
// write; changed is the later of the two, for the racy-write window (see
// knownDigest).
func fileIdentity(fi os.FileInfo) (id string, changed time.Time, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return "", time.Time{}, false
	}
	mtime, ctime := time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())
	changed = mtime
	if ctime.After(changed) {
		changed = ctime
	}
	return fmt.Sprintf("%d %d %d %d %d", st.Dev, st.Ino, st.Size, mtime.UnixNano(), ctime.UnixNano()), changed, true
}
