package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the binary's version, stamped at build time with
// -ldflags "-X main.version=…": `make build` stamps `git describe --tags
// --always`, plus "-dirty-" and a hash of the uncommitted diff when the
// tree has changes; the Dockerfile stamps its VERSION build argument or a
// hash of the sources. It is the worker's build id in
// the Worker Deployment (contract.DeploymentName), so two builds with
// different code must never share it.
var version string

// unknownVersion is what a binary built without a version and outside a git
// checkout reports; a worker refuses to run versioned under it, because
// every such build would claim the same build id.
const unknownVersion = "unknown"

// binaryVersion is the stamped version or, for a plain `go build` in a git
// checkout, the commit it was built from (with "-dirty" when the tree had
// uncommitted changes), which the go command records in the binary.
func binaryVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return unknownVersion
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return unknownVersion
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified {
		revision += "-dirty"
	}
	return revision
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the binary's version: the worker's build id in the Worker Deployment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), binaryVersion())
			return err
		},
	}
}
