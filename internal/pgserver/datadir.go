package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// prepareDataDir makes dataDir hold a complete cluster that the user postgres
// will run as owns and can reach.
func prepareDataDir(ctx context.Context, bins binaries, dataDir string, owner *runAs, durable bool, log *slog.Logger) error {
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if owner != nil {
		if err := owner.ensureTraversable(dataDir, log); err != nil {
			return err
		}
	}

	initialised, err := hasCluster(dataDir)
	if err != nil {
		return err
	}
	if !initialised {
		if err := initCluster(ctx, bins, dataDir, owner, durable, log); err != nil {
			return err
		}
	}
	if owner != nil {
		return owner.chownTree(dataDir)
	}
	return nil
}

// hasCluster reports whether dataDir holds a cluster. A directory that is
// neither missing, empty nor a cluster is left alone: it is not ours.
func hasCluster(dataDir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read data dir: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("data dir %s is not empty but holds no PG_VERSION; "+
			"refusing to initialise a cluster over it", dataDir)
	}
	return false, nil
}

// initCluster runs initdb into a sibling directory and renames it into place.
// initdb writes PG_VERSION early, so a run killed halfway would otherwise
// leave a directory that looks initialised but cannot start; with the rename
// dataDir only ever holds a complete cluster, and a leftover sibling is
// simply redone.
func initCluster(ctx context.Context, bins binaries, dataDir string, owner *runAs, durable bool, log *slog.Logger) error {
	tmp := filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".initdb")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // no-op after a successful rename
	if err := owner.chown(tmp); err != nil {
		return err
	}

	args := []string{
		"-D", tmp,
		"--auth=trust",
		"-U", superuser,
		"-E", "UTF8",
		"--locale=C",
	}
	if !durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, bins.initdb, args...)
	cmd.Dir = tmp
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr(owner)
	if err := runLogged(cmd, log, "initdb"); err != nil {
		return err
	}

	// An empty dataDir (one the caller made) is replaced; rename(2) allows
	// that only for an empty directory, so nothing of value can be lost.
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace empty data dir: %w", err)
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		if ok, _ := hasCluster(dataDir); ok {
			return nil // a concurrent Start initialised it first; use theirs
		}
		return fmt.Errorf("move initialised cluster into %s: %w", dataDir, err)
	}
	return nil
}

// runLogged runs a short-lived command, logging its output and quoting the
// last lines of it in the error.
func runLogged(cmd *exec.Cmd, log *slog.Logger, proc string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	out := newOutputTail(20)
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("start %s: %w", proc, err)
	}
	_ = w.Close()
	done := out.follow(r, log, proc)
	err = cmd.Wait()
	<-done
	if err != nil {
		return fmt.Errorf("%s: %w%s", proc, err, out.tailSuffix(10))
	}
	return nil
}

// checkDataDirFree looks at postmaster.pid, PostgreSQL's lock file. A live
// postmaster on this directory gives ErrDataDirInUse. A dead pid is left to
// postgres, which replaces such a lock itself. A pid that is alive but now
// belongs to an unrelated process (pids are reused, quickly so in containers)
// would make postgres refuse to start, so that lock is removed here.
// Whatever cannot be decided is left to postgres, whose own lock error
// Start also reports as ErrDataDirInUse.
func checkDataDirFree(dataDir string, log *slog.Logger) error {
	lockFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(lockFile)
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return nil
	}
	running, known := isPostmasterOf(pid, dataDir)
	switch {
	case !known:
		return nil
	case running:
		return fmt.Errorf("%w: %s is used by a running postgres (pid %d); stop it first", ErrDataDirInUse, dataDir, pid)
	}
	if err := os.Remove(lockFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", lockFile, err)
	}
	log.Info("removed stale postmaster.pid whose pid now belongs to another process", "pid", pid, "data_dir", dataDir)
	return nil
}

// isPostmasterOf tells from /proc whether pid is a postgres process working
// in dataDir (postgres processes chdir into their data directory). known is
// false when /proc cannot tell, e.g. on other systems.
func isPostmasterOf(pid int, dataDir string) (running, known bool) {
	proc := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		return false, false
	}
	if strings.TrimSpace(string(comm)) != "postgres" {
		return false, true
	}
	cwd, err := os.Readlink(proc + "/cwd")
	if err != nil {
		return true, true // a postgres we may not inspect: assume the worst
	}
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	return cwd == want, true
}
