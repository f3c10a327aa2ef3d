package pgserver

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// pgOSUser is the unprivileged account the PostgreSQL packages create.
const pgOSUser = "postgres"

// runAs is the identity initdb and postgres run under when we are root,
// because both refuse to run as root. nil means "as ourselves".
type runAs struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, primary included
}

// lookupRunAs returns nil when we are not root, and the postgres OS user
// when we are.
func lookupRunAs() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(pgOSUser)
	if err != nil {
		return nil, fmt.Errorf("%w: PostgreSQL refuses to run as root and user %q could not be found (%v); "+
			"install the PostgreSQL server package or create the user", ErrNoPostgresUser, pgOSUser, err)
	}
	r := &runAs{name: u.Username}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of %s: %w", pgOSUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of %s: %w", pgOSUser, err)
	}
	r.uid, r.gid = uint32(uid), uint32(gid)
	r.groups = []uint32{r.gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(r.groups, uint32(g)) {
				r.groups = append(r.groups, uint32(g))
			}
		}
	}
	return r, nil
}

func (r *runAs) credential() *syscall.Credential {
	return &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: r.groups}
}

// searchBit is the permission bit that decides whether r may traverse a
// directory with this owner: the owner, group or other class, as the kernel
// picks it.
func (r *runAs) searchBit(st *syscall.Stat_t) fs.FileMode {
	switch {
	case st.Uid == r.uid:
		return 0o100
	case slices.Contains(r.groups, st.Gid):
		return 0o010
	default:
		return 0o001
	}
}

// ensureTraversable makes every ancestor of dir searchable by r. PostgreSQL
// opens its data directory by path, so a single 0700 root-owned parent (which
// is what t.TempDir and os.MkdirTemp create) stops it. We add only the search
// bit, never read: r can then pass through but not list those directories.
// Both the path as given and its symlink-resolved form are walked, since the
// kernel traverses both.
func (r *runAs) ensureTraversable(dir string, log *slog.Logger) error {
	paths := []string{dir}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		paths = append(paths, real)
	}
	for _, p := range paths {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return fmt.Errorf("stat %s: %w", d, err)
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return fmt.Errorf("stat %s: no ownership information", d)
			}
			if bit := r.searchBit(st); fi.Mode().Perm()&bit == 0 {
				mode := fi.Mode().Perm() | bit
				if err := os.Chmod(d, mode); err != nil {
					return fmt.Errorf("make %s traversable for user %s: %w", d, r.name, err)
				}
				log.Info("made a parent of the PostgreSQL data directory traversable for its OS user",
					"dir", d, "user", r.name, "mode", mode.String())
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
}

// chownTree gives r the directory tree, unless it already owns the top: a
// data directory initialised by a non-root run (or copied in) would
// otherwise be rejected by postgres for its ownership.
func (r *runAs) chownTree(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == r.uid && st.Gid == r.gid {
		return nil
	}
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(r.uid), int(r.gid))
	})
	if err != nil {
		return fmt.Errorf("chown %s to %s: %w", dir, r.name, err)
	}
	return nil
}

// chown gives r a single path; nil r (not root) is a no-op.
func (r *runAs) chown(path string) error {
	if r == nil {
		return nil
	}
	if err := os.Lchown(path, int(r.uid), int(r.gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, r.name, err)
	}
	return nil
}
