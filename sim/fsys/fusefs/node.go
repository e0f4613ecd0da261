package fusefs

import (
	"context"
	"path"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose operations consult the fault rules first.
type node struct {
	*gofs.LoopbackNode
	m *FS
}

var (
	_ gofs.NodeWrapChilder    = (*node)(nil)
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeStatxer        = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeTmpfiler       = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeReaddirer      = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
)

// WrapChild makes every node of the tree a faulting node.
func (n *node) WrapChild(ctx context.Context, ops gofs.InodeEmbedder) gofs.InodeEmbedder {
	if ln, ok := ops.(*gofs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, m: n.m}
	}
	return ops
}

// visible is the path of n as the processes using the mount see it.
func (n *node) visible() string { return path.Join(n.m.visible, n.Path(nil)) }

func (n *node) child(name string) string { return path.Join(n.visible(), name) }

// setPerm replaces the permission bits of a mode with a perm rule's.
func setPerm(mode uint32, perm *uint32) uint32 {
	if perm == nil {
		return mode
	}
	return mode&^0o7777 | *perm&0o7777
}

// Lookup is "lstat" of the child.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	o := n.m.check(ctx, "lstat", n.child(name))
	if o.errno != 0 {
		return nil, o.errno
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		out.Attr.Mode = setPerm(out.Attr.Mode, o.perm)
	}
	return ch, errno
}

// Getattr is "stat".
func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	o := n.m.check(ctx, "stat", n.visible())
	if o.errno != 0 {
		return o.errno
	}
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	if errno == 0 {
		out.Attr.Mode = setPerm(out.Attr.Mode, o.perm)
	}
	return errno
}

// Statx is "stat".
func (n *node) Statx(ctx context.Context, f gofs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	o := n.m.check(ctx, "stat", n.visible())
	if o.errno != 0 {
		return o.errno
	}
	errno := n.LoopbackNode.Statx(ctx, f, flags, mask, out)
	if errno == 0 && o.perm != nil {
		out.Statx.Mode = uint16(setPerm(uint32(out.Statx.Mode), o.perm))
	}
	return errno
}

// Setattr is "chmod", "chown", "truncate" and/or "chtimes", by what it
// changes; the first failing one fails it, before anything changes.
func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.visible()
	var ops []string
	if _, ok := in.GetMode(); ok {
		ops = append(ops, "chmod")
	}
	_, uok := in.GetUID()
	_, gok := in.GetGID()
	if uok || gok {
		ops = append(ops, "chown")
	}
	if _, ok := in.GetSize(); ok {
		ops = append(ops, "truncate")
	}
	_, mok := in.GetMTime()
	_, aok := in.GetATime()
	if mok || aok {
		ops = append(ops, "chtimes")
	}
	for _, op := range ops {
		if o := n.m.check(ctx, op, p); o.errno != 0 {
			return o.errno
		}
	}
	return n.LoopbackNode.Setattr(ctx, unwrap(f), in, out)
}

// Open is "open".
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if o := n.m.check(ctx, "open", n.visible()); o.errno != 0 {
		return nil, 0, o.errno
	}
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &file{n: n, inner: fh}, fl, 0
}

// Create is "create" of the child.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if o := n.m.check(ctx, "create", n.child(name)); o.errno != 0 {
		return nil, nil, 0, o.errno
	}
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, &file{n: ch.Operations().(*node), inner: fh}, fl, 0
}

// Mknod is "create" of the child.
func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if o := n.m.check(ctx, "create", n.child(name)); o.errno != 0 {
		return nil, o.errno
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

// Tmpfile (O_TMPFILE) is "create" in the directory.
func (n *node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if o := n.m.check(ctx, "create", n.visible()); o.errno != 0 {
		return nil, nil, 0, o.errno
	}
	ch, fh, fl, errno := n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	fn, ok := ch.Operations().(*node)
	if !ok {
		fn = n
	}
	return ch, &file{n: fn, inner: fh}, fl, 0
}

// OpendirHandle is "opendir"; listing through the handle is "readdir".
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if o := n.m.check(ctx, "opendir", n.visible()); o.errno != 0 {
		return nil, 0, o.errno
	}
	fh, fl, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dir{n: n, inner: fh}, fl, 0
}

// Readdir is "readdir" (go-fuse uses OpendirHandle; this is for callers of
// the node API).
func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if o := n.m.check(ctx, "readdir", n.visible()); o.errno != 0 {
		return nil, o.errno
	}
	return n.LoopbackNode.Readdir(ctx)
}

// Mkdir is "mkdir" of the child.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if o := n.m.check(ctx, "mkdir", n.child(name)); o.errno != 0 {
		return nil, o.errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

// Rmdir is "remove" of the child.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if o := n.m.check(ctx, "remove", n.child(name)); o.errno != 0 {
		return o.errno
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

// Unlink is "remove" of the child.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if o := n.m.check(ctx, "remove", n.child(name)); o.errno != 0 {
		return o.errno
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

// Rename is "rename", selected by the old or the new path.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	o := n.m.check(ctx, "rename", n.child(name))
	if o.errno == 0 {
		o = n.m.check(ctx, "rename", path.Join(n.m.visible, newParent.EmbeddedInode().Path(nil), newName))
	}
	if o.errno != 0 {
		return o.errno
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

// Symlink is "symlink", selected by the new link's path.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if o := n.m.check(ctx, "symlink", n.child(name)); o.errno != 0 {
		return nil, o.errno
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

// Readlink is "readlink".
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if o := n.m.check(ctx, "readlink", n.visible()); o.errno != 0 {
		return nil, o.errno
	}
	return n.LoopbackNode.Readlink(ctx)
}

// file is an open file: reads are "read", writes "write", fsync "sync".
// It does not offer the kernel a passthrough descriptor, so every read and
// write reaches the rules.
type file struct {
	n     *node
	inner gofs.FileHandle
}

var (
	_ gofs.FileReader    = (*file)(nil)
	_ gofs.FileWriter    = (*file)(nil)
	_ gofs.FileWritever  = (*file)(nil)
	_ gofs.FileFsyncer   = (*file)(nil)
	_ gofs.FileFlusher   = (*file)(nil)
	_ gofs.FileReleaser  = (*file)(nil)
	_ gofs.FileGetattrer = (*file)(nil)
	_ gofs.FileStatxer   = (*file)(nil)
	_ gofs.FileSetattrer = (*file)(nil)
	_ gofs.FileLseeker   = (*file)(nil)
	_ gofs.FileAllocater = (*file)(nil)
	_ gofs.FileGetlker   = (*file)(nil)
	_ gofs.FileSetlker   = (*file)(nil)
	_ gofs.FileSetlkwer  = (*file)(nil)
)

// unwrap gives the loopback's own handle, which its node methods expect.
func unwrap(f gofs.FileHandle) gofs.FileHandle {
	if w, ok := f.(*file); ok {
		return w.inner
	}
	return f
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if o := f.n.m.check(ctx, "read", f.n.visible()); o.errno != 0 {
		return nil, o.errno
	}
	if r, ok := f.inner.(gofs.FileReader); ok {
		return r.Read(ctx, dest, off)
	}
	return nil, syscall.ENOTSUP
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if o := f.n.m.check(ctx, "write", f.n.visible()); o.errno != 0 {
		return 0, o.errno
	}
	if w, ok := f.inner.(gofs.FileWriter); ok {
		return w.Write(ctx, data, off)
	}
	return 0, syscall.ENOTSUP
}

func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if o := f.n.m.check(ctx, "write", f.n.visible()); o.errno != 0 {
		return 0, o.errno
	}
	if w, ok := f.inner.(gofs.FileWritever); ok {
		return w.Writev(ctx, data, off)
	}
	var total uint32
	for _, d := range data {
		w, ok := f.inner.(gofs.FileWriter)
		if !ok {
			return total, syscall.ENOTSUP
		}
		n, errno := w.Write(ctx, d, off)
		total += n
		off += int64(n)
		if errno != 0 || int(n) < len(d) {
			return total, errno
		}
	}
	return total, 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if o := f.n.m.check(ctx, "sync", f.n.visible()); o.errno != 0 {
		return o.errno
	}
	if s, ok := f.inner.(gofs.FileFsyncer); ok {
		return s.Fsync(ctx, flags)
	}
	return 0
}

func (f *file) Flush(ctx context.Context) syscall.Errno {
	if x, ok := f.inner.(gofs.FileFlusher); ok {
		return x.Flush(ctx)
	}
	return 0
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	if x, ok := f.inner.(gofs.FileReleaser); ok {
		return x.Release(ctx)
	}
	return 0
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if x, ok := f.inner.(gofs.FileGetattrer); ok {
		return x.Getattr(ctx, out)
	}
	return syscall.ENOTSUP
}

func (f *file) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if x, ok := f.inner.(gofs.FileStatxer); ok {
		return x.Statx(ctx, flags, mask, out)
	}
	return syscall.ENOTSUP
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if x, ok := f.inner.(gofs.FileSetattrer); ok {
		return x.Setattr(ctx, in, out)
	}
	return syscall.ENOTSUP
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	if x, ok := f.inner.(gofs.FileLseeker); ok {
		return x.Lseek(ctx, off, whence)
	}
	return 0, syscall.ENOTSUP
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if o := f.n.m.check(ctx, "write", f.n.visible()); o.errno != 0 {
		return o.errno
	}
	if x, ok := f.inner.(gofs.FileAllocater); ok {
		return x.Allocate(ctx, off, size, mode)
	}
	return syscall.ENOTSUP
}

func (f *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	if x, ok := f.inner.(gofs.FileGetlker); ok {
		return x.Getlk(ctx, owner, lk, flags, out)
	}
	return syscall.ENOTSUP
}

func (f *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	if x, ok := f.inner.(gofs.FileSetlker); ok {
		return x.Setlk(ctx, owner, lk, flags)
	}
	return syscall.ENOTSUP
}

func (f *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	if x, ok := f.inner.(gofs.FileSetlkwer); ok {
		return x.Setlkw(ctx, owner, lk, flags)
	}
	return syscall.ENOTSUP
}

// dir is an open directory: the listing is "readdir", asked once when it
// starts (and again after a rewind), so one `ls` is one activation.
type dir struct {
	n       *node
	inner   gofs.FileHandle
	mu      sync.Mutex
	started bool
}

var (
	_ gofs.FileReaddirenter = (*dir)(nil)
	_ gofs.FileSeekdirer    = (*dir)(nil)
	_ gofs.FileReleasedirer = (*dir)(nil)
	_ gofs.FileFsyncdirer   = (*dir)(nil)
)

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	start := !d.started
	d.mu.Unlock()
	if start {
		if o := d.n.m.check(ctx, "readdir", d.n.visible()); o.errno != 0 {
			return nil, o.errno
		}
		d.mu.Lock()
		d.started = true
		d.mu.Unlock()
	}
	if x, ok := d.inner.(gofs.FileReaddirenter); ok {
		return x.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.mu.Lock()
		d.started = false
		d.mu.Unlock()
	}
	if x, ok := d.inner.(gofs.FileSeekdirer); ok {
		return x.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	if x, ok := d.inner.(gofs.FileReleasedirer); ok {
		x.Releasedir(ctx, flags)
	}
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if o := d.n.m.check(ctx, "sync", d.n.visible()); o.errno != 0 {
		return o.errno
	}
	if x, ok := d.inner.(gofs.FileFsyncdirer); ok {
		return x.Fsyncdir(ctx, flags)
	}
	return 0
}
