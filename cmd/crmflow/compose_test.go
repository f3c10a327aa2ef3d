package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/dynamicconfig"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/temporalserver"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// No Docker engine runs where the tests run, so docker-compose.yml is checked
// with the Compose specification's own loader (compose-go): the same parsing,
// interpolation, env_file and merge rules `docker compose` applies.

// composeTestPassword and the dev master key stand in for what an operator
// writes into .env; neither protects anything.
const composeTestPassword = "compose-test-password"

// composeServices is the stack, each service with the services it waits for
// and the condition it waits on. One-shot jobs are waited for until they exit
// 0; long-running services until their health check passes.
var composeServices = map[string]map[string]string{
	"postgresql":         {},
	"temporal-schema":    {"postgresql": types.ServiceConditionHealthy},
	"temporal":           {"temporal-schema": types.ServiceConditionCompletedSuccessfully},
	"temporal-namespace": {"temporal": types.ServiceConditionHealthy},
	"temporal-ui":        {"temporal": types.ServiceConditionHealthy},
	"crmflow-migrate": {
		"postgresql":         types.ServiceConditionHealthy,
		"temporal-namespace": types.ServiceConditionCompletedSuccessfully,
	},
	"crmflow-worker": {"crmflow-migrate": types.ServiceConditionCompletedSuccessfully},
	"crmflow-serve":  {"crmflow-migrate": types.ServiceConditionCompletedSuccessfully},
}

// oneShotServices run to completion on every `up`; the rest run for good.
var oneShotServices = []string{"temporal-schema", "temporal-namespace", "crmflow-migrate"}

// crmflowServices run the image built from the repository's Dockerfile.
var crmflowServices = []string{"crmflow-migrate", "crmflow-worker", "crmflow-serve"}

// composePorts are the only published ports, as host_ip:published->target.
// Temporal and its UI authenticate no one, so they stay on loopback.
var composePorts = map[string][]string{
	"temporal":      {"127.0.0.1:7233->7233"},
	"temporal-ui":   {"127.0.0.1:8233->8080"},
	"crmflow-serve": {":8080->8080"},
}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return root
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	require.NoError(t, err)
	return string(b)
}

// composeDir lays out what `docker compose` would see in a fresh checkout
// after `cp .env.example .env`: the real docker-compose.yml, Dockerfile and
// .env.example, each passed through edit (which may change a copy).
func composeDir(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"docker-compose.yml": "docker-compose.yml",
		"Dockerfile":         "Dockerfile",
		".env.example":       ".env",
	} {
		text := readRepoFile(t, src)
		if edit != nil {
			text = edit(src, text)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, dst), []byte(text), 0o600))
	}
	return dir
}

// fillSecrets is what an operator does to .env before the first `up`.
func fillSecrets(name, text string) string {
	if name != ".env.example" {
		return text
	}
	text = setEnvLine(text, "POSTGRES_PASSWORD", composeTestPassword)
	text = setEnvLine(text, "CRMFLOW_API_TOKENS", "compose-test-service-token-0123")
	return setEnvLine(text, "CRMFLOW_MASTER_KEY", testenv.MasterKey)
}

// setEnvLine replaces the value of an uncommented KEY= line.
func setEnvLine(text, key, value string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `=.*$`)
	return re.ReplaceAllLiteralString(text, key+"="+value)
}

// loadCompose loads dir's docker-compose.yml the way `docker compose` does
// from that directory, with .env as the only environment.
func loadCompose(t *testing.T, dir string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(filepath.Join(dir, ".env")),
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	return opts.LoadProject(context.Background())
}

// TestComposeStack loads the real docker-compose.yml with the real
// .env.example (its required values filled in) and checks the stack's
// shape: services, pins, ports, health checks, volumes, start order and the
// crmflow containers' configuration.
func TestComposeStack(t *testing.T) {
	dir := composeDir(t, fillSecrets)
	p, err := loadCompose(t, dir)
	require.NoError(t, err)
	problems := composeProblems(p, composeInputs{
		dir:        dir,
		envExample: readRepoFile(t, ".env.example"),
		readme:     readRepoFile(t, "docs/configuration.md"),
		dockerfile: readRepoFile(t, "Dockerfile"),
		goMod:      readRepoFile(t, "go.mod"),
	})
	for _, pr := range problems {
		t.Error(pr)
	}
}

// TestComposeStackRequiresSecrets: `docker compose up` with .env copied
// unchanged from .env.example refuses, naming what to set.
func TestComposeStackRequiresSecrets(t *testing.T) {
	_, err := loadCompose(t, composeDir(t, nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set POSTGRES_PASSWORD in .env")

	_, err = loadCompose(t, composeDir(t, func(name, text string) string {
		if name == ".env.example" {
			return setEnvLine(text, "POSTGRES_PASSWORD", composeTestPassword)
		}
		return text
	}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set CRMFLOW_MASTER_KEY in .env")
	assert.Contains(t, err.Error(), "set CRMFLOW_API_TOKENS in .env")
}

// TestComposeChecksCatchBreakage breaks copies of the files one way at a
// time and expects composeProblems to name each breakage, so the check
// above cannot pass vacuously.
func TestComposeChecksCatchBreakage(t *testing.T) {
	cases := []struct {
		name, file, old, new string
		want                 string
	}{
		{name: "service removed", file: "docker-compose.yml",
			old: serviceBlock(t, "crmflow-worker"), new: "",
			want: `service "crmflow-worker" is missing`},
		{name: "untagged image", file: "docker-compose.yml",
			old: "image: temporalio/server:1.32.1", new: "image: temporalio/server",
			want: `"temporalio/server" has no tag`},
		{name: "latest image", file: "docker-compose.yml",
			old: "image: temporalio/ui:2.55.0", new: "image: temporalio/ui:latest",
			want: `"temporalio/ui:latest" uses latest`},
		{name: "floating tag", file: "docker-compose.yml",
			old: "image: postgres:15.19-bookworm", new: "image: postgres:15",
			want: `"postgres:15" is not pinned`},
		{name: "schema job out of step", file: "docker-compose.yml",
			old:  "image: temporalio/admin-tools:1.32.1\n    depends_on:\n      postgresql:",
			new:  "image: temporalio/admin-tools:1.31.5\n    depends_on:\n      postgresql:",
			want: "must match temporalio/server's"},
		{name: "temporal published to the world", file: "docker-compose.yml",
			old: `"127.0.0.1:7233:7233"`, new: `"7233:7233"`,
			want: `service "temporal" publishes [:7233->7233]`},
		{name: "health check removed", file: "docker-compose.yml",
			old: "      test: [\"CMD\", \"nc\", \"-z\", \"127.0.0.1\", \"7233\"]\n", new: "      disable: true\n",
			want: `service "temporal" has no health check`},
		{name: "database in an anonymous volume", file: "docker-compose.yml",
			old: "- postgresql-data:/var/lib/postgresql/data", new: "- /var/lib/postgresql/data",
			want: "named volume postgresql-data"},
		{name: "migrate not awaited", file: "docker-compose.yml",
			old:  "  crmflow-serve:\n    <<: *crmflow\n    command: [\"serve\"]\n    depends_on:\n      crmflow-migrate:\n        condition: service_completed_successfully\n",
			new:  "  crmflow-serve:\n    <<: *crmflow\n    command: [\"serve\"]\n    depends_on:\n      crmflow-migrate:\n        condition: service_started\n",
			want: `service "crmflow-serve" waits for crmflow-migrate: service_started`},
		{name: "env_file dropped", file: "docker-compose.yml",
			old: "  env_file:\n    - path: .env\n      required: true\n", new: "",
			want: "CRMFLOW_KNOCK_API_URL from .env does not reach the container"},
		{name: "documented key missing from .env.example", file: ".env.example",
			old: "CRMFLOW_KNOCK_API_URL=https://api.knock.app\n", new: "",
			want: "CRMFLOW_KNOCK_API_URL"},
		{name: "shards other than the cluster tests'", file: "docker-compose.yml",
			old: `NUM_HISTORY_SHARDS: "4"`, new: `NUM_HISTORY_SHARDS: "8"`,
			want: `NUM_HISTORY_SHARDS is "8"`},
		{name: "server a minor release ahead of the tests", file: "docker-compose.yml",
			old: "image: temporalio/server:1.32.1", new: "image: temporalio/server:1.33.0",
			want: "must run the same major.minor"},
		{name: "tests a minor release behind compose", file: "go.mod",
			old: "go.temporal.io/server v1.32.0", new: "go.temporal.io/server v1.31.2",
			want: "must run the same major.minor"},
		{name: "unrecorded patch release", file: "docker-compose.yml",
			old: "image: temporalio/server:1.32.1", new: "image: temporalio/server:1.32.2",
			want: "record 1.32.2's schema versions"},
		{name: "another schema", file: "docker-compose.yml",
			old: "--schema-name postgresql/v12/visibility", new: "--schema-name postgresql/v96/visibility",
			want: `"--db temporal_visibility update-schema --schema-name postgresql/v12/visibility"`},
		{name: "provider queue partitioned", file: "docker-compose.yml",
			old:  "      matching.numTaskqueueReadPartitions:\n        - value: 1\n          constraints: {taskQueueName: crmflow-stripe}\n",
			new:  "      matching.numTaskqueueReadPartitions:\n",
			want: "does not set matching.numtaskqueuereadpartitions to 1 for task queue crmflow-stripe, as the embedded server does"},
		{name: "visibility throttled", file: "docker-compose.yml",
			old: "frontend.namespaceRPS.visibility:\n        - value: 100", new: "frontend.namespaceRPS.visibility:\n        - value: 10",
			want: "does not set frontend.namespacerps.visibility to 100, as the embedded server does"},
		{name: "root image", file: "Dockerfile",
			old: "USER 65532:65532", new: "USER root",
			want: "runs as root"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := composeInputs{
				envExample: readRepoFile(t, ".env.example"),
				readme:     readRepoFile(t, "docs/configuration.md"),
				dockerfile: readRepoFile(t, "Dockerfile"),
				goMod:      readRepoFile(t, "go.mod"),
			}
			edit := func(name, text string) string {
				text = fillSecrets(name, text)
				if name == tc.file {
					require.Contains(t, text, tc.old, "the breakage must apply to the real %s", name)
					text = strings.Replace(text, tc.old, tc.new, 1)
				}
				return text
			}
			in.dir = composeDir(t, edit)
			switch tc.file {
			case ".env.example":
				in.envExample = edit(tc.file, in.envExample)
			case "Dockerfile":
				in.dockerfile = edit(tc.file, in.dockerfile)
			case "go.mod":
				in.goMod = edit(tc.file, in.goMod)
			}
			p, err := loadCompose(t, in.dir)
			require.NoError(t, err, "the broken file still loads; the checks must catch it")
			problems := composeProblems(p, in)
			require.NotEmpty(t, problems)
			assert.Contains(t, strings.Join(problems, "\n"), tc.want)
		})
	}
}

// TestComposeReleaseCheckCatchesSchemaDrift: a temporalio/server patch
// release recorded with schema versions other than the ones the tests
// apply is refused; recorded with the same ones, it passes, and go.mod's
// own release needs no record.
func TestComposeReleaseCheckCatchesSchemaDrift(t *testing.T) {
	goMod := readRepoFile(t, "go.mod")
	v := regexp.MustCompile(`(?m)^\s*go\.temporal\.io/server v(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(goMod)
	require.NotNil(t, v)
	main, err := temporalserver.SchemaVersion(temporalserver.PostgresSchema)
	require.NoError(t, err)
	vis, err := temporalserver.SchemaVersion(temporalserver.PostgresVisibilitySchema)
	require.NoError(t, err)
	patch, err := strconv.Atoi(v[3])
	require.NoError(t, err)
	next := fmt.Sprintf("%s.%s.%d", v[1], v[2], patch+1)

	assert.Empty(t, temporalReleaseProblems("temporalio/server:"+strings.Join(v[1:], "."), goMod, nil))
	assert.Empty(t, temporalReleaseProblems("temporalio/server:"+next, goMod, map[string][2]string{next: {main, vis}}))
	problems := temporalReleaseProblems("temporalio/server:"+next, goMod, map[string][2]string{next: {main, "0.1"}})
	require.Len(t, problems, 1)
	assert.Contains(t, problems[0], "ships schema "+main+" (visibility 0.1), the tests apply "+main+" (visibility "+vis+")")
}

// serviceBlock is a service's whole definition in the real
// docker-compose.yml, from its name to the next service.
func serviceBlock(t *testing.T, name string) string {
	t.Helper()
	text := readRepoFile(t, "docker-compose.yml")
	start := strings.Index(text, "\n  "+name+":\n")
	require.GreaterOrEqual(t, start, 0, "service %s in docker-compose.yml", name)
	rest := text[start+1:]
	next := regexp.MustCompile(`\n  [a-z-]+:\n|\n[a-z]`).FindStringIndex(rest[1:])
	require.NotNil(t, next)
	return rest[:next[0]+2]
}

// composeInputs are the files composeProblems checks the project against.
type composeInputs struct {
	dir        string // where docker-compose.yml was loaded from
	envExample string // .env.example
	readme     string // docs/configuration.md (its configuration table)
	dockerfile string // Dockerfile
	goMod      string // go.mod
}

// composeProblems lists everything wrong with the loaded stack, one sentence
// each; empty means the stack is as docs/production.md describes it.
func composeProblems(p *types.Project, in composeInputs) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Every service, no others.
	for name := range composeServices {
		if _, ok := p.Services[name]; !ok {
			add("service %q is missing", name)
		}
	}
	for name := range p.Services {
		if _, ok := composeServices[name]; !ok {
			add("service %q is not expected (add it to composeServices with its start order)", name)
		}
	}

	for name, svc := range p.Services {
		built := svc.Build != nil
		if pr := imagePinProblem(svc.Image, built); pr != "" {
			add("service %q: image %s", name, pr)
		}
		if slices.Contains(crmflowServices, name) && !built {
			add("service %q must be built from the repository's Dockerfile", name)
		}

		// Start order.
		want := composeServices[name]
		for dep, cond := range want {
			got, ok := svc.DependsOn[dep]
			switch {
			case !ok:
				add("service %q does not wait for %s", name, dep)
			case got.Condition != cond:
				add("service %q waits for %s: %s, want %s", name, dep, got.Condition, cond)
			}
		}
		for dep := range svc.DependsOn {
			if _, ok := want[dep]; !ok && want != nil {
				add("service %q waits for %s, which composeServices does not list", name, dep)
			}
		}

		// Published ports.
		var ports []string
		for _, port := range svc.Ports {
			ports = append(ports, fmt.Sprintf("%s:%s->%d", port.HostIP, port.Published, port.Target))
		}
		sort.Strings(ports)
		if !slices.Equal(ports, composePorts[name]) {
			add("service %q publishes %v, want %v", name, ports, composePorts[name])
		}

		// Health checks and restarts: one-shot jobs exit, the rest are
		// healthy before anything that needs them starts.
		if slices.Contains(oneShotServices, name) {
			if svc.Restart != "no" {
				add("one-shot service %q must not restart (restart %q)", name, svc.Restart)
			}
		} else {
			hc := svc.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") || hc.Interval == nil {
				add("service %q has no health check (test, interval)", name)
			}
			if svc.Restart != types.RestartPolicyUnlessStopped {
				add("service %q restarts %q, want unless-stopped", name, svc.Restart)
			}
		}

		// Data lives in named volumes only, never in a host path.
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeVolume || v.Source == "" {
				add("service %q mounts %s %q at %s: only named volumes", name, v.Type, v.Source, v.Target)
			}
		}
	}

	if pg, ok := p.Services["postgresql"]; ok {
		if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Source == "postgresql-data" && v.Target == "/var/lib/postgresql/data"
		}) {
			add("postgresql must keep its data in the named volume postgresql-data at /var/lib/postgresql/data")
		}
		if _, ok := p.Volumes["postgresql-data"]; !ok {
			add("volume postgresql-data is not declared")
		}
		if got := envValue(pg, "POSTGRES_PASSWORD"); got != composeTestPassword {
			add("postgresql: POSTGRES_PASSWORD is %q, want the .env value", got)
		}
	}

	problems = append(problems, temporalProblems(p)...)
	if server, ok := p.Services["temporal"]; ok {
		problems = append(problems, temporalReleaseProblems(server.Image, in.goMod, imageSchemas)...)
	}
	problems = append(problems, crmflowEnvProblems(p, in)...)
	problems = append(problems, dockerfileProblems(in)...)
	sort.Strings(problems)
	return problems
}

// pinnedTag is an exact release: major.minor at least, optionally a patch
// and a variant suffix (15.19-bookworm, 1.32.1, 2.55.0).
var pinnedTag = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$`)

// imagePinProblem says why image is not pinned, or "" when it is. An image
// built from the repository only needs an explicit tag that is not latest.
func imagePinProblem(image string, built bool) string {
	if image == "" {
		return "is not set"
	}
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	name, tag := image, ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	switch {
	case tag == "":
		return fmt.Sprintf("%q has no tag", name)
	case tag == "latest":
		return fmt.Sprintf("%q uses latest", image)
	case !built && !pinnedTag.MatchString(tag):
		return fmt.Sprintf("%q is not pinned to an exact release", image)
	}
	return ""
}

// imageTag is the tag of a name:tag image reference.
func imageTag(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

func envValue(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// temporalProblems checks the Temporal services are wired to one PostgreSQL
// and to each other, and that their versions move together.
func temporalProblems(p *types.Project) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	server, ok := p.Services["temporal"]
	if !ok {
		return nil
	}
	serverTag := imageTag(server.Image)
	for _, name := range []string{"temporal-schema", "temporal-namespace"} {
		if svc, ok := p.Services[name]; ok {
			if !strings.HasPrefix(svc.Image, "temporalio/admin-tools:") || imageTag(svc.Image) != serverTag {
				add("service %q runs %s: it must match temporalio/server's tag %s (the schema ships with the server)",
					name, svc.Image, serverTag)
			}
		}
	}
	if !strings.HasPrefix(server.Image, "temporalio/server:") {
		add("service temporal runs %s, want the official temporalio/server", server.Image)
	}
	for key, want := range map[string]string{
		"DB": "postgres12", "POSTGRES_SEEDS": "postgresql", "POSTGRES_USER": "crmflow",
		"POSTGRES_PWD": composeTestPassword, "BIND_ON_IP": "0.0.0.0",
		// The shard count is fixed when the cluster's database is created;
		// compose starts with the count the cluster tests run.
		"NUM_HISTORY_SHARDS": strconv.Itoa(temporalserver.DefaultPostgresHistoryShards),
	} {
		if got := envValue(server, key); got != want {
			add("service temporal: %s is %q, want %q", key, got, want)
		}
	}
	if schema, ok := p.Services["temporal-schema"]; ok {
		for key, want := range map[string]string{
			"SQL_PLUGIN": "postgres12", "SQL_HOST": "postgresql", "SQL_USER": "crmflow", "SQL_PASSWORD": composeTestPassword,
		} {
			if got := envValue(schema, key); got != want {
				add("service temporal-schema: %s is %q, want %q", key, got, want)
			}
		}
		script := strings.Join(schema.Command, " ")
		for db, name := range map[string]string{
			"temporal": temporalserver.PostgresSchema, "temporal_visibility": temporalserver.PostgresVisibilitySchema,
		} {
			for _, step := range []string{"create-database", "setup-schema", "update-schema"} {
				if !strings.Contains(script, "--db "+db+" "+step) {
					add("service temporal-schema does not run %s on database %s", step, db)
				}
			}
			// The schema the embedded server applies on PostgreSQL.
			if want := "--db " + db + " update-schema --schema-name " + name; !strings.Contains(script, want) {
				add("service temporal-schema does not run %q", want)
			}
		}
	}
	if ns, ok := p.Services["temporal-namespace"]; ok {
		if got := envValue(ns, "NAMESPACE"); got != "default" {
			add("service temporal-namespace creates namespace %q, want .env's CRMFLOW_TEMPORAL_NAMESPACE (default)", got)
		}
	}

	// The server refuses to start without its dynamic config file: it must
	// be mounted where DYNAMIC_CONFIG_FILE_PATH points and parse cleanly.
	path := envValue(server, "DYNAMIC_CONFIG_FILE_PATH")
	idx := slices.IndexFunc(server.Configs, func(c types.ServiceConfigObjConfig) bool { return c.Target == path })
	if path == "" || idx < 0 {
		add("service temporal: no config mounted at DYNAMIC_CONFIG_FILE_PATH %q", path)
		return problems
	}
	dc, ok := p.Configs[server.Configs[idx].Source]
	if !ok || dc.Content == "" {
		add("config %q has no inline content", server.Configs[idx].Source)
		return problems
	}
	lr := dynamicconfig.LoadYamlFile([]byte(dc.Content))
	if len(lr.Errors)+len(lr.Warnings) > 0 {
		add("Temporal dynamic config: errors %v, warnings %v", lr.Errors, lr.Warnings)
	}
	// Every setting the embedded server shares with production, with the
	// provider queues `crmflow dev` gives one partition each (matching
	// splits a queue's rate limit across its partitions, so with more a
	// provider gets less than limits.<provider>.per_second), is compose's
	// too, value for value: the list comes from temporalserver, so a
	// setting added there is missing here until compose carries it.
	for key, val := range temporalserver.ProductionDynamicConfig(temporalserver.Options{OnePartitionQueues: providerQueues()}) {
		want, ok := val.([]dynamicconfig.ConstrainedValue)
		if !ok {
			want = []dynamicconfig.ConstrainedValue{{Value: val}}
		}
		for _, cv := range want {
			if !slices.ContainsFunc(lr.Map[key], func(got dynamicconfig.ConstrainedValue) bool {
				return got.Constraints == cv.Constraints && fmt.Sprint(got.Value) == fmt.Sprint(cv.Value)
			}) {
				scope := ""
				switch q := cv.Constraints.TaskQueueName; {
				case cv.Constraints == dynamicconfig.Constraints{TaskQueueName: q} && q != "":
					scope = " for task queue " + q
				case cv.Constraints != dynamicconfig.Constraints{}:
					scope = fmt.Sprintf(" with constraints %+v", cv.Constraints)
				}
				add("Temporal dynamic config does not set %s to %v%s, as the embedded server does", key, cv.Value, scope)
			}
		}
	}
	return problems
}

// imageSchemas records the schema versions (main store, visibility) that
// temporalio/server releases differing from go.mod's go.temporal.io/server
// in the patch only ship, read from that module version's
// schema/postgresql/v12 (version.go and the versioned steps).
// 1.32.1: its schema directory is identical to 1.32.0's.
var imageSchemas = map[string][2]string{
	"1.32.1": {"1.19", "1.14"},
}

// serverRelease is a go.temporal.io/server or temporalio/server version.
var serverRelease = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)$`)

// temporalReleaseProblems ties compose's Temporal release to the one the
// tests embed (go.mod's go.temporal.io/server). The tests prove crmflow on
// that server with the schema it applies from its own module
// (temporalserver.SchemaVersion); compose's server runs the schema its
// admin-tools image of the same tag ships. So the two releases must share
// major.minor (the server's behaviour), and compose's must ship the schema
// versions the tests apply: true by construction for the same release, and
// for a patch apart only when recorded in recorded after checking, since
// patch releases have changed schema versions (1.24.1 visibility 1.5 to
// 1.6, 1.26.2 visibility 1.6 to 1.7, 1.27.1 main 1.15 to 1.16).
func temporalReleaseProblems(image, goMod string, recorded map[string][2]string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	m := regexp.MustCompile(`(?m)^\s*go\.temporal\.io/server (v\S+)`).FindStringSubmatch(goMod)
	if m == nil {
		return []string{"go.mod does not require go.temporal.io/server"}
	}
	tag := imageTag(image)
	embedded, shipped := serverRelease.FindStringSubmatch(m[1]), serverRelease.FindStringSubmatch(tag)
	if embedded == nil || shipped == nil {
		return []string{fmt.Sprintf("cannot compare temporalio/server:%s with go.temporal.io/server %s", tag, m[1])}
	}
	if embedded[1] != shipped[1] || embedded[2] != shipped[2] {
		add("service temporal runs temporalio/server:%s but the tests embed go.temporal.io/server %s: compose must run the same major.minor",
			tag, m[1])
		return problems
	}
	if embedded[3] == shipped[3] {
		return problems
	}
	var applied [2]string
	for i, name := range []string{temporalserver.PostgresSchema, temporalserver.PostgresVisibilitySchema} {
		v, err := temporalserver.SchemaVersion(name)
		if err != nil {
			return append(problems, err.Error())
		}
		applied[i] = v
	}
	got, ok := recorded[strings.TrimPrefix(tag, "v")]
	switch {
	case !ok:
		add("service temporal runs temporalio/server:%s, the tests go.temporal.io/server %s: compare the two modules' schema/postgresql/v12 and record %s's schema versions in imageSchemas, or run %s",
			tag, m[1], tag, strings.TrimPrefix(m[1], "v"))
	case got != applied:
		add("temporalio/server:%s ships schema %s (visibility %s), the tests apply %s (visibility %s): run go.mod's release",
			tag, got[0], got[1], applied[0], applied[1])
	}
	return problems
}

// readmeEnvVar matches the env vars of docs/configuration.md's table of
// settings (the table once lived in README.md).
var readmeEnvVar = regexp.MustCompile("(?m)^\\| `[a-z_.]+` \\| `(CRMFLOW_[A-Z0-9_]+)` \\|")

// crmflowEnvProblems checks the crmflow containers: built image, hardening,
// their wiring, and that every setting docs/configuration.md's table names
// (except `crmflow dev`'s own) is either set for them or documented in
// .env.example, and that .env.example names no key crmflow does not read.
func crmflowEnvProblems(p *types.Project, in composeInputs) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// documented holds every CRMFLOW_* line of .env.example, commented out
	// (showing a default) or not; fromEnvFile the uncommented ones, which
	// env_file hands to the containers as they are.
	documented := map[string]bool{}
	fromEnvFile := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(in.envExample))
	envLine := regexp.MustCompile(`^(# ?)?(CRMFLOW_[A-Z0-9_]+)=(.*)$`)
	for sc.Scan() {
		if m := envLine.FindStringSubmatch(sc.Text()); m != nil {
			documented[m[2]] = true
			if m[1] == "" {
				fromEnvFile[m[2]] = m[3]
			}
		}
	}
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[config.EnvVar(k)] = true
	}
	for key := range documented {
		if !known[key] {
			add(".env.example names %s, which is no crmflow setting", key)
		}
	}

	var tableVars []string
	for _, m := range readmeEnvVar.FindAllStringSubmatch(in.readme, -1) {
		if !strings.HasPrefix(m[1], "CRMFLOW_DEV_") {
			tableVars = append(tableVars, m[1])
		}
	}
	if len(tableVars) < 20 {
		add("docs/configuration.md's configuration table names only %d env vars; the check needs the table", len(tableVars))
	}

	wiring := map[string]string{
		"CRMFLOW_DATABASE_URL":     "postgres://crmflow:" + composeTestPassword + "@postgresql:5432/crmflow?sslmode=disable",
		"CRMFLOW_TEMPORAL_ADDRESS": "temporal:7233",
		"CRMFLOW_HTTP_ADDR":        "0.0.0.0:8080",
		"CRMFLOW_MASTER_KEY":       testenv.MasterKey,
		"CRMFLOW_API_TOKENS":       "compose-test-service-token-0123",
	}
	for _, name := range crmflowServices {
		svc, ok := p.Services[name]
		if !ok {
			continue
		}
		if !svc.ReadOnly {
			add("service %q should run with a read-only root file system", name)
		}
		if svc.Build == nil || svc.Build.Context != in.dir {
			add("service %q must build the repository's Dockerfile", name)
		}
		for key, want := range wiring {
			if got := envValue(svc, key); got != want {
				add("service %q: %s is %q, want %q", name, key, got, want)
			}
		}
		for key, want := range fromEnvFile {
			if _, wired := wiring[key]; wired {
				continue
			}
			if got, set := svc.Environment[key]; !set || got == nil || *got != want {
				add("service %q: %s from .env does not reach the container as %q", name, key, want)
			}
		}
		for _, key := range tableVars {
			if _, set := svc.Environment[key]; !set && !documented[key] {
				add("service %q: %s (docs/configuration.md table) is neither set nor documented in .env.example", name, key)
			}
		}
		cmd := strings.Join(svc.Command, " ")
		if name != "crmflow-migrate" && (svc.HealthCheck == nil || !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), "/readyz")) {
			add("service %q should be healthy only while /readyz answers", name)
		}
		if want := strings.TrimPrefix(name, "crmflow-"); !strings.HasPrefix(cmd, want) {
			add("service %q runs %q, want `crmflow %s`", name, cmd, want)
		}
	}
	if m, ok := p.Services["crmflow-migrate"]; ok && !slices.Contains(m.Command, "--temporal") {
		add("crmflow-migrate must register the search attributes too (migrate --temporal)")
	}
	return problems
}

// dockerfileProblems checks the image: builder on go.mod's Go version, a
// pinned small final stage, a non-root numeric user and the /crmflow
// entrypoint the health checks call.
func dockerfileProblems(in composeInputs) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(in.goMod)
	var froms []string
	user := ""
	for _, line := range strings.Split(in.dockerfile, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			image := ""
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					image = f
					break
				}
			}
			froms = append(froms, image)
			user = ""
		case "USER":
			if len(fields) > 1 {
				user = fields[1]
			}
		}
	}
	if len(froms) < 2 {
		add("Dockerfile must be multi-stage (build, then a small final image), has %d stages", len(froms))
		return problems
	}
	if goVersion == nil || !strings.HasPrefix(froms[0], "golang:"+goVersion[1]+"-") {
		add("Dockerfile builds with %s, want golang:<go.mod's go version>", froms[0])
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && !strings.HasPrefix(final, "alpine:") {
		add("Dockerfile's final image %s is not a small static base", final)
	}
	if imageTag(final) == "" || imageTag(final) == "latest" {
		add("Dockerfile's final image %s must have an explicit tag", final)
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		add("Dockerfile's final stage runs as root (USER %q)", user)
	}
	if !strings.Contains(in.dockerfile, `ENTRYPOINT ["/crmflow"]`) {
		add(`Dockerfile must end in ENTRYPOINT ["/crmflow"], which the health checks call`)
	}
	return problems
}
