package host

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	wsys "github.com/tetratelabs/wazero/sys"

	"github.com/wasmhost/wasmhost/grants"
)

type sysStat = wsys.Stat_t

// confinedFS is a granted directory as the guest sees it. wazero already
// refuses paths that climb out with ".."; this also keeps symlinks from
// leading out: every path is resolved on the host before use and refused
// (EPERM) if it ends up outside the directory, and the guest cannot create
// symlinks or hard links at all. A symlink that stays inside works.
//
// The check and the use are two steps, so something outside the sandbox
// that swaps a directory for a symlink between them could win a race; the
// guest itself cannot (it cannot create links), and the operator controls
// what else writes to a granted directory.
type confinedFS struct {
	experimentalsys.FS
	root string // the directory, symlinks resolved
}

// confine mounts dir, read-write or read-only.
func confine(dir string, write bool) experimentalsys.FS {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		root = dir // Stat at load said it exists; a later error shows on use
	}
	var fsys experimentalsys.FS = &confinedFS{FS: sysfs.DirFS(root), root: root}
	if !write {
		fsys = &sysfs.ReadFS{FS: fsys}
	}
	return fsys
}

// check resolves the relative path p and refuses it if it leads outside.
// With followLast false the last element is not followed (lstat, unlink,
// rename, readlink act on a link itself), so only its parent is checked.
func (c *confinedFS) check(p string, followLast bool) experimentalsys.Errno {
	full := filepath.Join(c.root, filepath.FromSlash(p))
	target := full
	if !followLast {
		target = filepath.Dir(full)
	}
	real, err := filepath.EvalSymlinks(target)
	if err != nil {
		if !os.IsNotExist(err) {
			return experimentalsys.UnwrapOSError(err)
		}
		// Not there (yet): a create. A dangling symlink would be followed
		// by the create, so it is refused; otherwise the parent decides.
		if fi, lerr := os.Lstat(target); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return experimentalsys.EPERM
		}
		real, err = filepath.EvalSymlinks(filepath.Dir(target))
		if err != nil {
			return experimentalsys.ENOENT
		}
	}
	if real != c.root && !strings.HasPrefix(real, c.root+string(filepath.Separator)) {
		return experimentalsys.EPERM
	}
	return 0
}

func (c *confinedFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if errno := c.check(p, flag&experimentalsys.O_NOFOLLOW == 0); errno != 0 {
		return nil, errno
	}
	return c.FS.OpenFile(p, flag, perm)
}

func (c *confinedFS) Stat(p string) (st_ sysStat, errno experimentalsys.Errno) {
	if errno := c.check(p, true); errno != 0 {
		return st_, errno
	}
	return c.FS.Stat(p)
}

func (c *confinedFS) Lstat(p string) (st_ sysStat, errno experimentalsys.Errno) {
	if errno := c.check(p, false); errno != 0 {
		return st_, errno
	}
	return c.FS.Lstat(p)
}

func (c *confinedFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if errno := c.check(p, false); errno != 0 {
		return errno
	}
	return c.FS.Mkdir(p, perm)
}

func (c *confinedFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if errno := c.check(p, true); errno != 0 {
		return errno
	}
	return c.FS.Chmod(p, perm)
}

func (c *confinedFS) Rename(from, to string) experimentalsys.Errno {
	if errno := c.check(from, false); errno != 0 {
		return errno
	}
	if errno := c.check(to, false); errno != 0 {
		return errno
	}
	return c.FS.Rename(from, to)
}

func (c *confinedFS) Rmdir(p string) experimentalsys.Errno {
	if errno := c.check(p, false); errno != 0 {
		return errno
	}
	return c.FS.Rmdir(p)
}

func (c *confinedFS) Unlink(p string) experimentalsys.Errno {
	if errno := c.check(p, false); errno != 0 {
		return errno
	}
	return c.FS.Unlink(p)
}

// Link and Symlink are refused: a link is how a guest would build its own
// way out.
func (c *confinedFS) Link(string, string) experimentalsys.Errno    { return experimentalsys.EPERM }
func (c *confinedFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (c *confinedFS) Readlink(p string) (string, experimentalsys.Errno) {
	if errno := c.check(p, false); errno != 0 {
		return "", errno
	}
	return c.FS.Readlink(p)
}

func (c *confinedFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if errno := c.check(p, true); errno != 0 {
		return errno
	}
	return c.FS.Utimens(p, atim, mtim)
}

// gatedFS is a declared directory nobody has granted yet, mounted so that
// a person can grant it during a call: until open mounts the directory
// behind it, its root is an empty directory and every other path fails
// with ENOENT, as if nothing were there. The root must open: the guest's
// runtime lists the mounts when it starts, through the root, and stops at
// the first that fails. The guest opens paths by name, so once the gate is
// open they reach the directory. An instance with gates is never reused, so a gate opened by one
// call's "once" is never seen by another.
type gatedFS struct {
	experimentalsys.UnimplementedFS
	inner atomic.Pointer[experimentalsys.FS]
}

// open makes the directory a person allowed, if need be, and mounts it
// behind the gate.
func (g *gatedFS) open(d grants.DirGrant) error {
	if err := os.MkdirAll(d.HostPath, 0o700); err != nil {
		return err
	}
	fsys := confine(d.HostPath, d.Write)
	g.inner.Store(&fsys)
	return nil
}

func (g *gatedFS) fs() (experimentalsys.FS, experimentalsys.Errno) {
	if p := g.inner.Load(); p != nil {
		return *p, 0
	}
	return nil, experimentalsys.ENOENT
}

func (g *gatedFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	f, errno := g.fs()
	if errno != 0 {
		if p == "." {
			return emptyDir{}, 0
		}
		return nil, errno
	}
	return f.OpenFile(p, flag, perm)
}

func (g *gatedFS) Stat(p string) (sysStat, experimentalsys.Errno) {
	f, errno := g.fs()
	if errno != 0 {
		return sysStat{}, errno
	}
	return f.Stat(p)
}

func (g *gatedFS) Lstat(p string) (sysStat, experimentalsys.Errno) {
	f, errno := g.fs()
	if errno != 0 {
		return sysStat{}, errno
	}
	return f.Lstat(p)
}

func (g *gatedFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Mkdir(p, perm)
}

func (g *gatedFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Chmod(p, perm)
}

func (g *gatedFS) Rename(from, to string) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Rename(from, to)
}

func (g *gatedFS) Rmdir(p string) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Rmdir(p)
}

func (g *gatedFS) Unlink(p string) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Unlink(p)
}

func (g *gatedFS) Link(string, string) experimentalsys.Errno    { return experimentalsys.EPERM }
func (g *gatedFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (g *gatedFS) Readlink(p string) (string, experimentalsys.Errno) {
	f, errno := g.fs()
	if errno != 0 {
		return "", errno
	}
	return f.Readlink(p)
}

func (g *gatedFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	f, errno := g.fs()
	if errno != 0 {
		return errno
	}
	return f.Utimens(p, atim, mtim)
}

// emptyDir is the root of a closed gate: a directory with nothing in it.
type emptyDir struct {
	experimentalsys.UnimplementedFile
}

func (emptyDir) IsDir() (bool, experimentalsys.Errno) { return true, 0 }
func (emptyDir) Stat() (sysStat, experimentalsys.Errno) {
	return sysStat{Mode: fs.ModeDir | 0o500, Nlink: 1}, 0
}
func (emptyDir) Readdir(int) ([]experimentalsys.Dirent, experimentalsys.Errno) { return nil, 0 }
func (emptyDir) Close() experimentalsys.Errno                                  { return 0 }
