// Package fsys is the filesystem of a simulated job host: an afero.Fs wrapped
// by the fault layer (WithFaults), the host root on the real disk confined to
// one directory (NewRootFs), and an in-memory host tree for virtual hosts
// (NewMemHost). The FUSE mount that makes the same faults reach real
// processes lives in the fusefs subpackage.
//
// Operation names follow fault.LayerOps[fault.FS]: opening a directory is
// "opendir" and listing it is "readdir", so the site incident "the library
// directory became unlistable while its files still open" is the one rule
//
//	fault.Rule{Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib",
//		Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}}
//
// Permissions: afero.MemMapFs does not enforce permission bits (a directory
// chmod'ed to 000 still lists, and it keeps no readable owner), and this
// package does not add a permission checker on top of it. To make a path
// unreadable for one user, add a rule with User set and an EACCES errno on
// the operations that should fail (and a perm rule if stat must show it).
// Under FUSE (fusefs) the kernel does check modes, including those reported
// by perm rules, for callers other than root.
package fsys
