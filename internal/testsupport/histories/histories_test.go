package histories

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpus makes a corpus with v1 sealed (two files) in a temp dir.
func corpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ManifestName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var manifest strings.Builder
	for _, name := range []string{"order_confirmation_confirmed.json", "low_stock_alert_continued.json"} {
		rel, err := Record(dir, "v1", name, []byte(`{"events":[]}`+"\n"+name))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Sum(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		manifest.WriteString(sum + "  " + rel + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(manifest.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func check(t *testing.T, dir string) string {
	t.Helper()
	problems, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(problems, "\n")
}

// TestCheckFindsEveryDeparture: a sealed corpus checks clean; a changed,
// missing, unlisted or misplaced file is reported, each in its own words.
func TestCheckFindsEveryDeparture(t *testing.T) {
	dir := corpus(t)
	if got := check(t, dir); got != "" {
		t.Fatalf("a freshly sealed corpus has problems:\n%s", got)
	}
	for _, c := range []struct {
		name, want string
		change     func(dir string) error
	}{
		{"changed", "v1/order_confirmation_confirmed.json changed since its version was sealed", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "v1", "order_confirmation_confirmed.json"), []byte(`{"events":[1]}`), 0o644)
		}},
		{"missing", "v1/order_confirmation_confirmed.json is listed in MANIFEST.sha256 but missing", func(dir string) error {
			return os.Remove(filepath.Join(dir, "v1", "order_confirmation_confirmed.json"))
		}},
		{"unlisted", "v1/order_refund_refunded.json is not in MANIFEST.sha256", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "v1", "order_refund_refunded.json"), []byte(`{}`), 0o644)
		}},
		{"outside a version", "latest/order_refund_refunded.json: histories live in <version>/", func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "latest"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "latest", "order_refund_refunded.json"), []byte(`{}`), 0o644)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := corpus(t)
			if err := c.change(dir); err != nil {
				t.Fatal(err)
			}
			if got := check(t, dir); !strings.Contains(got, c.want) {
				t.Fatalf("want a problem %q, got:\n%s", c.want, got)
			}
		})
	}
}

// TestRecordNeverOverwrites: a recording goes into a version the manifest
// does not list yet, under a well-formed name, and never over a file.
func TestRecordNeverOverwrites(t *testing.T) {
	dir := corpus(t)
	history := []byte(`{"events":[]}`)
	for _, c := range []struct{ version, name, want string }{
		{"v1", "order_refund_refunded.json", "v1 is sealed"},
		{"latest", "order_refund_refunded.json", "name versions v1, v2"},
		{"v2", "../v1/x_y.json", "name histories <workflow>_<branch>.json"},
	} {
		if _, err := Record(dir, c.version, c.name, history); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Record(%s, %s): want an error %q, got %v", c.version, c.name, c.want, err)
		}
	}
	if _, err := Record(dir, "v2", "order_refund_refunded.json", history); err != nil {
		t.Fatal(err)
	}
	_, err := Record(dir, "v2", "order_refund_refunded.json", []byte(`{"events":[2]}`))
	if err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("a second recording of one file: want a refusal, got %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "v2", "order_refund_refunded.json"))
	if err != nil || string(got) != string(history) {
		t.Fatalf("the first recording is kept: %q, %v", got, err)
	}
	if files, err := Files(dir); err != nil || strings.Join(files, ",") !=
		"v1/low_stock_alert_continued.json,v1/order_confirmation_confirmed.json,v2/order_refund_refunded.json" {
		t.Fatalf("Files: %v, %v", files, err)
	}
}

// TestVersionsSortByNumber: v10 comes after v2.
func TestVersionsSortByNumber(t *testing.T) {
	if compareNames("v10/a_b.json", "v2/a_b.json") <= 0 || compareNames("v1/a_b.json", "v1/b_c.json") >= 0 {
		t.Fatal("versions sort by number, then by file name")
	}
}
