package sshd

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/sim/fsys"
)

// owners gives the owner and group names of sftp's `ls -l`, as `ls -la`
// on the same host shows them. On a filesystem of the real disk (a real
// host), files carry real ids and a real `ls` names them from the real
// machine's user database, so the names come from there. On a virtual
// filesystem files carry no owner, and the virtual executor's `ls` shows
// them as the calling user's; here too they are the session user's, named
// by the host's own /etc/passwd and /etc/group. An id without a name stays
// a number, as with ls.
type owners struct {
	realDisk bool
	uid, gid uint32            // the session user's, for files without owner
	users    map[string]string // id -> name, virtual filesystems
	groups   map[string]string
}

// newOwners looks at the filesystem once per sftp session.
func newOwners(fs afero.Fs, userName string) *owners {
	o := &owners{users: map[string]string{}, groups: map[string]string{}}
	if fi, err := fs.Stat("/"); err == nil {
		_, o.realDisk = fi.Sys().(*syscall.Stat_t)
	}
	if o.realDisk {
		return o
	}
	// The virtual executor's default account when the host lists none.
	o.uid, o.gid = 1000, 1000
	o.users["1000"], o.groups["1000"] = userName, userName
	if us, err := fsys.Users(fs); err == nil {
		for _, u := range us {
			gid := u.GID
			if gid == 0 && u.UID != 0 {
				gid = u.UID
			}
			o.users[strconv.Itoa(u.UID)] = u.Name
			if u.Name == userName {
				o.uid, o.gid = uint32(u.UID), uint32(gid)
				o.groups[strconv.Itoa(gid)] = u.Name // virtual ls: the group is named as the user
			}
		}
	}
	if b, err := afero.ReadFile(fs, "/etc/group"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 3 && f[0] != "" {
				if _, taken := o.groups[f[2]]; !taken {
					o.groups[f[2]] = f[0]
				}
			}
		}
	}
	return o
}

// own gives a file without owner information the session user's ids.
func (o *owners) own(fi os.FileInfo) os.FileInfo {
	if o.realDisk {
		return fi
	}
	if _, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fi
	}
	return ownedInfo{FileInfo: fi, uid: o.uid, gid: o.gid}
}

func (o *owners) userName(id string) string {
	if o.realDisk {
		if u, err := user.LookupId(id); err == nil {
			return u.Username
		}
		return id
	}
	if n, ok := o.users[id]; ok {
		return n
	}
	return id
}

func (o *owners) groupName(id string) string {
	if o.realDisk {
		if g, err := user.LookupGroupId(id); err == nil {
			return g.Name
		}
		return id
	}
	if n, ok := o.groups[id]; ok {
		return n
	}
	return id
}

// ownedInfo is a file with the ids sftp reports for it (pkg/sftp's
// FileInfoUidGid).
type ownedInfo struct {
	os.FileInfo
	uid, gid uint32
}

func (o ownedInfo) Uid() uint32 { return o.uid }
func (o ownedInfo) Gid() uint32 { return o.gid }

// LookupUserName implements sftp.NameLookupFileLister: the owner column
// of the long names OpenSSH's `ls -l` prints.
func (h *sftpHandler) LookupUserName(uid string) string { return h.owners.userName(uid) }

// LookupGroupName implements sftp.NameLookupFileLister.
func (h *sftpHandler) LookupGroupName(gid string) string { return h.owners.groupName(gid) }
