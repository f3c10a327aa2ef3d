// Package histories keeps the frozen replay corpus: the histories of real
// runs under workflows/testdata/histories, one directory per version
// (v1, v2, … in the order they were cut), every file's SHA-256 listed in
// MANIFEST.sha256 there. A version, once listed, is never edited or
// re-recorded: runs it recorded may still be open in production, so the
// current workflow code must replay them as they are. The replay tests
// (workflows/replay_test.go) check the corpus against its manifest and
// replay every version; the end-to-end tests record a new version through
// Record (docs/testing.md says how to cut one).
//
// It is test support: it imports the standard library only.
package histories

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ManifestName is the manifest's file name in the corpus directory. Its
// lines are sha256sum's ("<hex>  v1/name.json"), so
// `sha256sum -c MANIFEST.sha256` in that directory checks it too.
const ManifestName = "MANIFEST.sha256"

// VersionName is what a version directory is called.
var VersionName = regexp.MustCompile(`^v[1-9][0-9]*$`)

// FileName is what every history is called: <workflow>_<branch>.json.
var FileName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)+\.json$`)

// Dir is the corpus directory, found from the module root, so tests in any
// package reach the same one.
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("histories: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "workflows", "testdata", "histories"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("histories: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Manifest maps each listed file ("v1/name.json") to its SHA-256 in hex.
type Manifest map[string]string

// ReadManifest parses dir's manifest.
func ReadManifest(dir string) (Manifest, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("histories: read manifest: %w", err)
	}
	defer f.Close()
	m := Manifest{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 || name == "" {
			return nil, fmt.Errorf("histories: %s line %d is not `<sha256>  <version>/<file>`", ManifestName, n)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("histories: %s lists %s twice", ManifestName, name)
		}
		m[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("histories: read manifest: %w", err)
	}
	return m, nil
}

// Sealed tells whether the manifest lists any file of version: a sealed
// version is frozen.
func (m Manifest) Sealed(version string) bool {
	for name := range m {
		if strings.HasPrefix(name, version+"/") {
			return true
		}
	}
	return false
}

// Files lists every file under dir's version directories, as manifest
// names ("v1/name.json"), sorted by version number, then name.
func Files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel != ManifestName {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("histories: list %s: %w", dir, err)
	}
	slices.SortFunc(out, compareNames)
	return out, nil
}

// compareNames orders v2 before v10.
func compareNames(a, b string) int {
	va, _, _ := strings.Cut(a, "/")
	vb, _, _ := strings.Cut(b, "/")
	if len(va) != len(vb) {
		return len(va) - len(vb)
	}
	return strings.Compare(a, b)
}

// Check compares the corpus with its manifest and returns every problem:
// a listed file changed or missing, a file not listed, a file outside a
// version directory or misnamed. Nothing returned means the corpus is
// exactly what was sealed.
func Check(dir string) ([]string, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, name := range files {
		version, file, _ := strings.Cut(name, "/")
		if !VersionName.MatchString(version) || strings.Contains(file, "/") || !FileName.MatchString(file) {
			problems = append(problems, fmt.Sprintf("%s: histories live in <version>/<workflow>_<branch>.json, version v1, v2, …", name))
			continue
		}
		want, listed := m[name]
		if !listed {
			problems = append(problems, fmt.Sprintf("%s is not in %s: seal its version (make seal-histories HISTORIES=%s) "+
				"or, if it was added to a sealed version, remove it", name, ManifestName, version))
			continue
		}
		got, err := Sum(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		if got != want {
			problems = append(problems, fmt.Sprintf("%s changed since its version was sealed: committed histories are never "+
				"edited or re-recorded; restore it (git checkout) and record a new version instead", name))
		}
	}
	for name := range m {
		if !slices.Contains(files, name) {
			problems = append(problems, fmt.Sprintf("%s is listed in %s but missing: restore it", name, ManifestName))
		}
	}
	slices.Sort(problems)
	return problems, nil
}

// Sum is a file's SHA-256 in hex.
func Sum(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("histories: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Record writes a recorded history as version/name. It refuses a version
// the manifest lists (sealed versions are frozen), a malformed version or
// file name, and a file that exists (a recording never overwrites one:
// delete the unsealed version's directory to record it again).
func Record(dir, version, name string, history []byte) (string, error) {
	if !VersionName.MatchString(version) {
		return "", fmt.Errorf("histories: version %q: name versions v1, v2, …", version)
	}
	if !FileName.MatchString(name) {
		return "", fmt.Errorf("histories: %q: name histories <workflow>_<branch>.json", name)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return "", err
	}
	if m.Sealed(version) {
		return "", fmt.Errorf("histories: %s is sealed in %s and never re-recorded: record the next version", version, ManifestName)
	}
	rel := path.Join(version, name)
	file := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", fmt.Errorf("histories: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("histories: %s exists and is never overwritten: "+
			"to record %s again, delete its directory first", rel, version)
	}
	if err != nil {
		return "", fmt.Errorf("histories: %w", err)
	}
	if _, err := f.Write(history); err != nil {
		f.Close()
		return "", fmt.Errorf("histories: write %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("histories: write %s: %w", rel, err)
	}
	return rel, nil
}
