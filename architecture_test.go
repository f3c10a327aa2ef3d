// Package crmflow_test holds the test that keeps the import rules of
// docs/architecture.md true: which room may import which, and that the
// contract and starter pull in no infrastructure.
package crmflow_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/crmflow/crmflow"

// allowed lists, per room, the crmflow rooms its non-test code may import.
// A room is a top-level folder, or "internal" for every library under it
// (testsupport apart). Anything not listed is refused. docs/architecture.md
// says the same in prose; change both together.
var allowed = map[string][]string{
	"contract":             {},
	"starter":              {"contract"},
	"config":               {"contract", "internal"},
	"activities":           {"contract", "internal"},
	"workflows":            {"contract", "activities", "internal"},
	"inbox":                {"contract", "starter", "config", "internal"},
	"webhooks":             {"contract", "inbox", "config", "internal"},
	"doctor":               {"contract", "config", "internal"},
	"api":                  {"contract", "webhooks", "inbox", "starter", "doctor", "config", "internal"},
	"worker":               {"contract", "workflows", "activities", "starter", "config", "internal"},
	"internal":             {"contract", "config", "internal"},
	"internal/testsupport": {"contract", "config", "internal", "internal/testsupport"},
	"cmd":                  {"contract", "config", "internal", "starter", "workflows", "activities", "inbox", "webhooks", "api", "worker", "doctor"},
	"tests":                {"*"},
}

// infrastructure are packages the contract and starter must never pull in,
// even indirectly: another Go service imports them to start crmflow's
// workflows and must not inherit crmflow's database, providers or server.
var infrastructure = []string{
	"github.com/jackc/pgx", "github.com/stripe/stripe-go", "github.com/resend/resend-go", "github.com/svix/",
	"go.temporal.io/server", module + "/internal/", module + "/activities", module + "/workflows",
}

type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// roomOf is the room a crmflow import path belongs to, "" for the module
// root.
func roomOf(path string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	parts := strings.Split(rel, "/")
	if parts[0] == "internal" && len(parts) > 1 && parts[1] == "testsupport" {
		return "internal/testsupport"
	}
	return parts[0]
}

// TestImportRules fails when a room imports one it may not.
func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		from := roomOf(p.ImportPath)
		rules, ok := allowed[from]
		if !ok {
			if from != "" {
				t.Errorf("%s is in room %q, which docs/architecture.md and this test do not know", p.ImportPath, from)
			}
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := roomOf(imp)
			if to == from || contains(rules, "*") || contains(rules, to) {
				continue
			}
			t.Errorf("%s imports %s: room %s may import only %v", p.ImportPath, imp, from, rules)
		}
	}
}

// TestContractAndStarterImportNoInfrastructure checks the transitive
// imports of the two packages other programs import.
func TestContractAndStarterImportNoInfrastructure(t *testing.T) {
	found := 0
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/contract" && p.ImportPath != module+"/starter" {
			continue
		}
		found++
		for _, dep := range p.Deps {
			for _, bad := range infrastructure {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s", p.ImportPath, dep)
				}
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of contract and starter", found)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
