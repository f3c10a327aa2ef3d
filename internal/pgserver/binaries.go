package pgserver

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// binaries are the two PostgreSQL programs we need. pg_ctl is not among
// them: postgres runs as our direct child, not as a daemon.
type binaries struct {
	initdb   string
	postgres string
}

// packageBinGlob is where Debian and Ubuntu install the server binaries,
// which are not on PATH there by default.
const packageBinGlob = "/usr/lib/postgresql/*/bin"

// findBinaries looks for initdb and postgres in one directory, so the two
// always come from the same PostgreSQL version: first next to the postgres
// found on PATH (and next to its symlink target), then in the newest
// packaged version.
func findBinaries() (binaries, error) {
	var dirs []string
	if p, err := exec.LookPath("postgres"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	packaged, _ := filepath.Glob(packageBinGlob) // the pattern is constant and valid
	sort.Slice(packaged, func(i, j int) bool {
		return majorVersion(packaged[i]) > majorVersion(packaged[j])
	})
	dirs = append(dirs, packaged...)

	for _, dir := range dirs {
		b := binaries{
			initdb:   filepath.Join(dir, "initdb"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in " +
		packageBinGlob + "; install the PostgreSQL server package")
}

// majorVersion reads 15 from /usr/lib/postgresql/15/bin; 0 if it cannot.
func majorVersion(binDir string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(filepath.Base(filepath.Dir(binDir))))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
