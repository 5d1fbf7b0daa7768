package main

// Checks of deploy/ (issue 11 part 5): the Dockerfile, the KServe manifests
// and the systemd units are parsed here and held to what the image, the
// cluster and the Pi need, and every edge-resnet command line in them is
// parsed by this CLI's own cobra commands, so a renamed or removed flag
// fails here. The probe paths are requested from a real serve.Server.
// systemd-analyze verify and security check the units where systemd is
// installed (CI installs it). docker build and a cluster are not available:
// the Dockerfile's instructions and the manifests' fields are checked as
// text and YAML (gopkg.in/yaml.v3), not built or applied.

import (
	"encoding/json"
	"github.com/spf13/pflag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/serve"
)

const deployDir = "../../deploy"

// The health paths the Dockerfile, the manifests and the README name.
const (
	livePath  = "/v2/health/live"
	readyPath = "/v2/health/ready"
)

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseCLI parses args with the CLI's own commands, as running the binary
// would, without running anything; it fails on an unknown command or flag,
// a bad flag value or unwanted arguments.
func parseCLI(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	root := newRootCmd()
	c, rest, err := root.Find(args)
	if err != nil || c == root {
		t.Fatalf("%q: no such command (%v)", args, err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if err := c.ValidateArgs(c.Flags().Args()); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return c
}

// checkServeArgs parses a serve command line, checks its values as
// runServe would, and returns its flags.
func checkServeArgs(t *testing.T, args []string) serveFlags {
	t.Helper()
	c := parseCLI(t, args)
	if c.Name() != "serve" {
		t.Fatalf("%q: command %s, want serve", args, c.Name())
	}
	// The flags again, into a serveFlags of our own: the command's is
	// inside its closure.
	var f serveFlags
	fl := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	sessions, threads := serve.DefaultPool(runtime.GOMAXPROCS(0))
	serveFlagSet(fl, &f, sessions, threads)
	if err := fl.Parse(args[1:]); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if _, err := serveOptions(f); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if _, err := parseModelArgs(f.models, f.name); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return f
}

// addrPort is the port of a --addr value.
func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--addr %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("--addr %q: %v", addr, err)
	}
	return n
}

// TestDeployHealthPaths: the probe paths answer as the probes expect, from
// the server serve runs: 200 when live and ready, ready 503 while draining
// (so a load balancer stops sending) and live still 200 (no restart).
func TestDeployHealthPaths(t *testing.T) {
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, err := serve.New([]serve.Named{{Name: "resnet50", Model: m}}, serve.Options{Sessions: 1, ThreadsPerSession: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{livePath, readyPath, "/v2/models/resnet50/ready"} {
		if s := status(p); s != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, s)
		}
	}
	srv.Drain()
	if s := status(readyPath); s != http.StatusServiceUnavailable {
		t.Errorf("draining: GET %s: %d, want 503", readyPath, s)
	}
	if s := status(livePath); s != http.StatusOK {
		t.Errorf("draining: GET %s: %d, want 200", livePath, s)
	}
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(text string) []dockerInstr {
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(text, "\n") {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "#") || (s == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(s, "\\") {
			cur.WriteString(strings.TrimSuffix(s, "\\") + " ")
			continue
		}
		cur.WriteString(s)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// execForm reads a JSON-array (exec form) instruction argument.
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil || len(v) == 0 {
		t.Fatalf("Dockerfile:%d: %s %s: want the exec form [\"...\"] (no shell in the image): %v", in.line, in.cmd, in.args, err)
	}
	return v
}

func TestDeployDockerfile(t *testing.T) {
	instrs := parseDockerfile(readDeploy(t, "Dockerfile"))
	var froms []dockerInstr
	last := map[string]dockerInstr{} // per instruction, the last one (in the final stage once froms is complete)
	var runs []string
	args := map[string]bool{}
	for _, in := range instrs {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in)
			clear(last)
		case "RUN":
			runs = append(runs, in.args)
		case "ARG":
			for _, a := range strings.Fields(in.args) {
				name, _, _ := strings.Cut(a, "=")
				args[name] = true
			}
		case "HEALTHCHECK":
			t.Errorf("Dockerfile:%d: HEALTHCHECK cannot run in distroless (no shell, no curl); probes use %s and %s", in.line, livePath, readyPath)
		}
		last[in.cmd] = in
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d FROM, want a build stage and a final stage", len(froms))
	}
	build, final := froms[0].args, froms[len(froms)-1].args
	if !strings.Contains(build, "--platform=$BUILDPLATFORM") || !strings.Contains(build, "golang:") {
		t.Errorf("build stage %q: want golang on --platform=$BUILDPLATFORM (cross-compiling, no emulation)", build)
	}
	if !regexp.MustCompile(`^(gcr\.io/distroless/static(-debian\d+)?:nonroot|scratch)(\s|$)`).MatchString(final) {
		t.Errorf("final stage %q: want gcr.io/distroless/static:nonroot or scratch", final)
	}
	for _, a := range []string{"TARGETOS", "TARGETARCH", "TARGETVARIANT"} {
		if !args[a] {
			t.Errorf("Dockerfile: no ARG %s (BuildKit sets it from --platform)", a)
		}
	}
	build1 := strings.Join(runs, "\n")
	for _, want := range []string{"CGO_ENABLED=0", `GOOS="$TARGETOS"`, `GOARCH="$TARGETARCH"`, "${TARGETVARIANT#v}", `GOARM="$goarm"`, "-trimpath", "-s -w", "-X main.version=", "./cmd/edge-resnet"} {
		if !strings.Contains(build1, want) {
			t.Errorf("Dockerfile RUN: no %q", want)
		}
	}
	_ = version // the variable -X main.version sets

	user, ok := last["USER"]
	if !ok {
		t.Fatal("final stage: no USER")
	}
	uid, gid, _ := strings.Cut(user.args, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric non-root uid (runAsNonRoot can only check a number)", user.args)
	}
	if gid != "" {
		if _, err := strconv.Atoi(gid); err != nil {
			t.Errorf("USER %s: want a numeric gid", user.args)
		}
	}
	entry, cmd := last["ENTRYPOINT"], last["CMD"]
	if e := execForm(t, entry); len(e) != 1 || e[0] != "/edge-resnet" {
		t.Errorf("ENTRYPOINT %v: want [\"/edge-resnet\"]", e)
	}
	if !slices.ContainsFunc(instrs, func(in dockerInstr) bool {
		return in.cmd == "COPY" && strings.HasPrefix(in.args, "--from=build") && strings.HasSuffix(in.args, " /edge-resnet")
	}) {
		t.Error("Dockerfile: the binary is not copied to /edge-resnet from the build stage")
	}
	f := checkServeArgs(t, execForm(t, cmd))
	port := addrPort(t, f.addr)
	if h, _, _ := net.SplitHostPort(f.addr); h != "" && h != "0.0.0.0" {
		t.Errorf("CMD --addr %s: a container must listen on every interface", f.addr)
	}
	if expose := last["EXPOSE"].args; expose != strconv.Itoa(port) && expose != strconv.Itoa(port)+"/tcp" {
		t.Errorf("EXPOSE %q, CMD listens on %d", expose, port)
	}
	if uid != "65532" {
		t.Errorf("USER %s: the KServe runtime's runAsUser is 65532 (distroless nonroot)", user.args)
	}
}

// TestDeployDockerignore: the context keeps what the build needs: go.mod,
// go.sum, the sources and the files the package embeds.
func TestDeployDockerignore(t *testing.T) {
	lines := strings.Split(readDeploy(t, "Dockerfile.dockerignore"), "\n")
	if !slices.Contains(lines, "**") {
		t.Skip("not an allow-list: nothing to check")
	}
	embeds, err := filepath.Glob("../../*.go")
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"!go.mod", "!go.sum", "!**/*.go", "!**/*.s"}
	re := regexp.MustCompile(`(?m)^//go:embed (\S+)$`)
	for _, f := range embeds {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			need = append(need, "!"+m[1])
		}
	}
	if len(need) == 4 {
		t.Fatal("found no //go:embed in the root package")
	}
	for _, n := range need {
		if !slices.Contains(lines, n) {
			t.Errorf("Dockerfile.dockerignore: no %q: the image build needs it", n)
		}
	}
}

// yamlDoc decodes a manifest.
func yamlDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(readDeploy(t, name)), &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// at walks a decoded YAML document: strings index maps, ints lists.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping", path[:i])
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: missing", path[:i+1])
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: not a list of %d", path[:i], k+1)
			}
			v = l[k]
		}
	}
	return v
}

func TestDeployKServe(t *testing.T) {
	rt := yamlDoc(t, "kserve/servingruntime.yaml")
	is := yamlDoc(t, "kserve/inferenceservice.yaml")
	if a, k := at(t, rt, "apiVersion"), at(t, rt, "kind"); a != "serving.kserve.io/v1alpha1" || k != "ServingRuntime" {
		t.Errorf("servingruntime.yaml: %v %v", a, k)
	}
	if a, k := at(t, is, "apiVersion"), at(t, is, "kind"); a != "serving.kserve.io/v1beta1" || k != "InferenceService" {
		t.Errorf("inferenceservice.yaml: %v %v", a, k)
	}
	spec := at(t, rt, "spec")
	if !slices.Contains(at(t, spec, "protocolVersions").([]any), any("v2")) {
		t.Error("ServingRuntime: protocolVersions has no v2")
	}
	format := at(t, spec, "supportedModelFormats", 0, "name")
	model := at(t, is, "spec", "predictor", "model")
	if got := at(t, model, "modelFormat", "name"); got != format || format != "edge-resnet" {
		t.Errorf("InferenceService modelFormat %v, runtime supports %v, want edge-resnet", got, format)
	}
	if got := at(t, model, "runtime"); got != at(t, rt, "metadata", "name") {
		t.Errorf("InferenceService runtime %v, ServingRuntime %v", got, at(t, rt, "metadata", "name"))
	}
	if got := at(t, model, "protocolVersion"); got != "v2" {
		t.Errorf("InferenceService protocolVersion %v", got)
	}
	isName := at(t, is, "metadata", "name").(string)

	c := at(t, spec, "containers", 0)
	if at(t, c, "name") != "kserve-container" {
		t.Errorf("container %v: KServe merges the InferenceService into the container named kserve-container", at(t, c, "name"))
	}
	var args []string
	for _, a := range at(t, c, "args").([]any) {
		s, ok := a.(string)
		if !ok {
			t.Fatalf("args: %v (%T) is not a string", a, a)
		}
		// KServe fills in {{.Name}}, the InferenceService's name.
		args = append(args, strings.ReplaceAll(s, "{{.Name}}", isName))
	}
	f := checkServeArgs(t, args)
	if f.name != isName {
		t.Errorf("served as %q, want the InferenceService's name %q (KServe routes /v2/models/%s/...)", f.name, isName, isName)
	}
	if len(f.models) != 1 || !strings.HasPrefix(f.models[0], "/mnt/models/") {
		t.Errorf("-m %v: want one model under /mnt/models, where KServe puts storageUri", f.models)
	}
	port := addrPort(t, f.addr)
	if cp := at(t, c, "ports", 0, "containerPort"); cp != port {
		t.Errorf("containerPort %v, serve --addr %s", cp, f.addr)
	}
	for probe, path := range map[string]string{"livenessProbe": livePath, "readinessProbe": readyPath} {
		if p := at(t, c, probe, "httpGet", "path"); p != path {
			t.Errorf("%s path %v, want %s", probe, p, path)
		}
		if p := at(t, c, probe, "httpGet", "port"); p != port {
			t.Errorf("%s port %v, serve listens on %d", probe, p, port)
		}
	}
	for _, r := range []any{c, at(t, model)} {
		for _, k := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory"} {
				at(t, r, "resources", k, res)
			}
		}
	}
	// The threads serve runs fit the CPU limit.
	if cpu, err := strconv.Atoi(at(t, c, "resources", "limits", "cpu").(string)); err != nil || f.sessions*f.threads > cpu {
		t.Errorf("--sessions %d x --threads-per-session %d, cpu limit %v", f.sessions, f.threads, at(t, c, "resources", "limits", "cpu"))
	}
	if g := f.grace; g <= 0 || g >= 30*time.Second {
		t.Errorf("--grace %v: want less than Kubernetes' default terminationGracePeriodSeconds, 30 s", g)
	}
	if slices.Contains(at(t, spec, "protocolVersions").([]any), any("grpc-v2")) && f.grpcAddr == "" {
		t.Error("ServingRuntime lists grpc-v2 but serve has no --grpc-addr")
	}
	checkTuneCacheMounted(t, spec, c)
	sc := at(t, c, "securityContext")
	for k, want := range map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "runAsUser": 65532} {
		if got := at(t, sc, k); got != want {
			t.Errorf("securityContext.%s %v, want %v", k, got, want)
		}
	}
	if d := at(t, sc, "capabilities", "drop").([]any); !slices.Contains(d, any("ALL")) {
		t.Errorf("securityContext.capabilities.drop %v, want ALL", d)
	}
}

// unit is a systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	sec := ""
	for i, l := range strings.Split(text, "\n") {
		s := strings.TrimSpace(l)
		switch {
		case s == "" || s[0] == '#' || s[0] == ';':
		case s[0] == '[' && s[len(s)-1] == ']':
			sec = s[1 : len(s)-1]
			u[sec] = map[string][]string{}
		case sec == "":
			t.Fatalf("line %d: %q outside a section", i+1, s)
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok || strings.HasSuffix(s, "\\") {
				t.Fatalf("line %d: %q: want Key=value on one line", i+1, s)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

func (u unit) get(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	if len(v) == 0 {
		t.Errorf("[Service] has no %s=", key)
		return ""
	}
	return v[len(v)-1]
}

// The hardening every unit has.
var unitHardening = map[string]string{
	"DynamicUser":             "yes",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectControlGroups":    "yes",
	"RestrictNamespaces":      "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"SystemCallArchitectures": "native",
	"StandardOutput":          "journal",
	"StandardError":           "journal",
}

func checkUnit(t *testing.T, u unit) {
	t.Helper()
	for k, want := range unitHardening {
		if got := u.get(t, k); got != want {
			t.Errorf("%s=%s, want %q", k, got, want)
		}
	}
	if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %v: want @system-service", u["Service"]["SystemCallFilter"])
	}
	if u.get(t, "RestrictAddressFamilies") == "" || u.get(t, "MemoryMax") == "" {
		t.Error("want RestrictAddressFamilies and MemoryMax")
	}
	// The runtime does not see MemoryMax (no cgroup namespace): the budget
	// it checks before allocating must be below it.
	budget, max := "", u.get(t, "MemoryMax")
	for _, e := range u["Service"]["Environment"] {
		if v, ok := strings.CutPrefix(e, edgeresnet.EnvMaxMemory+"="); ok {
			budget = v
		}
	}
	b, err1 := edgeresnet.ParseBytes(budget)
	// systemd's K, M, G are powers of 1024.
	m, err2 := edgeresnet.ParseBytes(strings.NewReplacer("K", "KiB", "M", "MiB", "G", "GiB").Replace(max))
	if err1 != nil || err2 != nil || b <= 0 || b >= m {
		t.Errorf("%s=%q, MemoryMax=%s: want a budget below MemoryMax (%v, %v)", edgeresnet.EnvMaxMemory, budget, max, err1, err2)
	}
	if u["Install"]["WantedBy"] == nil {
		t.Error("no [Install] WantedBy=: systemctl enable would not start it at boot")
	}
}

func TestDeploySystemdServe(t *testing.T) {
	u := parseUnit(t, readDeploy(t, "systemd/edge-resnet.service"))
	checkUnit(t, u)
	args := strings.Fields(u.get(t, "ExecStart"))
	if args[0] != "/usr/local/bin/edge-resnet" {
		t.Errorf("ExecStart %s: deploy/README.md installs /usr/local/bin/edge-resnet", args[0])
	}
	f := checkServeArgs(t, args[1:])
	addrPort(t, f.addr)
	if g, stop := f.grace, u.get(t, "TimeoutStopSec"); stop != "" {
		d, err := time.ParseDuration(stop)
		if err != nil || d <= g {
			t.Errorf("TimeoutStopSec=%s: want longer than --grace %v", stop, g)
		}
	}
	for _, k := range []string{"PrivateDevices", "MemoryDenyWriteExecute"} {
		if u.get(t, k) != "yes" {
			t.Errorf("%s: want yes", k)
		}
	}
	systemdAnalyze(t, "edge-resnet.service")
}

func TestDeploySystemdCamera(t *testing.T) {
	u := parseUnit(t, readDeploy(t, "systemd/edge-resnet-camera.service"))
	checkUnit(t, u)
	if g := u.get(t, "SupplementaryGroups"); g != "video" {
		t.Errorf("SupplementaryGroups=%s: the camera devices are the video group's", g)
	}
	exec := u.get(t, "ExecStart")
	m := regexp.MustCompile(`^/bin/sh -c '([^']*)'$`).FindStringSubmatch(exec)
	if m == nil {
		t.Fatalf("ExecStart=%s: want /bin/sh -c '...'", exec)
	}
	stages := strings.Split(m[1], "|")
	if len(stages) != 2 || !strings.HasPrefix(strings.TrimSpace(stages[0]), "rpicam-vid ") {
		t.Fatalf("ExecStart pipeline %q: want rpicam-vid ... | edge-resnet classify --stream ...", m[1])
	}
	cam := strings.Fields(stages[0])
	for i, want := range map[string]string{"--codec": "mjpeg", "-o": "-", "-t": "0"} {
		if j := slices.Index(cam, i); j < 0 || j+1 >= len(cam) || cam[j+1] != want {
			t.Errorf("rpicam-vid: want %s %s", i, want)
		}
	}
	args := strings.Fields(stages[1])
	if args[0] != "/usr/local/bin/edge-resnet" {
		t.Errorf("%s: deploy/README.md installs /usr/local/bin/edge-resnet", args[0])
	}
	c := parseCLI(t, args[1:])
	if s, _ := c.Flags().GetBool("stream"); c.Name() != "classify" || !s || !slices.Equal(c.Flags().Args(), []string{"-"}) {
		t.Errorf("%q: want classify --stream ... -", args[1:])
	}
	systemdAnalyze(t, "edge-resnet-camera.service")
}

// systemdAnalyze runs systemd-analyze verify (any message fails: it warns
// about unknown keys and bad values but exits 0) and security --offline
// (an exposure above 2.0 of 10 fails) on a copy of the unit whose
// edge-resnet is this test binary (verify wants the executable to exist).
func systemdAnalyze(t *testing.T, name string) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		msg := "systemd-analyze not installed (apt-get install systemd): unit files not verified by systemd"
		if os.Getenv("EDGE_RESNET_REQUIRE_TESTDATA") == "1" {
			t.Fatal(msg + " (EDGE_RESNET_REQUIRE_TESTDATA=1)")
		}
		t.Skip(msg)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(readDeploy(t, "systemd/"+name), "/usr/local/bin/edge-resnet", self)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold=20", p).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security %s: exposure above 2.0: %v\n%s", name, err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security %s: exposure %s", name, m[1])
	}
}

// TestDeployMakefile: make release builds the four Pi and server targets
// statically, stripped, with the version stamped.
func TestDeployMakefile(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	for _, want := range []string{"linux/amd64", "linux/arm64", "linux/armv7", "linux/armv6", "CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=", "SHA256SUMS", "release:"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile: no %q", want)
		}
	}
	gi, err := os.ReadFile("../../.gitignore")
	if err != nil || !slices.Contains(strings.Split(string(gi), "\n"), "dist/") {
		t.Errorf(".gitignore: want dist/ (%v)", err)
	}
}

// checkTuneCacheMounted checks that the container, whose root filesystem
// is read-only, has its tuning cache (XDG_CACHE_HOME/edge-resnet) on a
// volume of the pod spec, so that serve --tune measure can keep it.
func checkTuneCacheMounted(t *testing.T, spec, c any) {
	t.Helper()
	cache := ""
	for _, e := range at(t, c, "env").([]any) {
		if at(t, e, "name") == "XDG_CACHE_HOME" {
			cache = at(t, e, "value").(string)
		}
	}
	if cache == "" {
		t.Fatal("no XDG_CACHE_HOME: the tuning cache would go to the read-only root filesystem")
	}
	vol := ""
	for _, m := range at(t, c, "volumeMounts").([]any) {
		if at(t, m, "mountPath") == cache+"/edge-resnet" {
			vol = at(t, m, "name").(string)
		}
	}
	found := false
	for _, v := range at(t, spec, "volumes").([]any) {
		found = found || at(t, v, "name") == vol
	}
	if vol == "" || !found {
		t.Errorf("%s/edge-resnet: mounted from volume %q, declared %v", cache, vol, found)
	}
}
