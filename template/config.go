package template

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind says how a job is started on GitHub: the "type" of an agent
// config. Hosts read it from AgentConfig.Type, to label or route jobs.
type Kind string

// Kinds of agent config, one per way of starting a job.
const (
	KindWorkflowDispatch   Kind = "workflow_dispatch"
	KindRepositoryDispatch Kind = "repository_dispatch"
	KindDeployment         Kind = "deployment"
	KindPullRequest        Kind = "pull_request"
)

// GitHub's limits, checked before anything is sent.
const (
	maxWorkflowInputs    = 25
	maxEventTypeLength   = 100
	maxClientPayloadKeys = 10
)

// MaxClientPayloadBytes bounds the JSON of a repository_dispatch
// client_payload: GitHub wants it under 64 KB. Render checks it; package
// dispatch checks it again on the payload it sends. Hosts rarely need it.
const MaxClientPayloadBytes = 64<<10 - 1

// JobIDKey is the workflow input (workflow_dispatch) or payload key
// (repository_dispatch, deployment) that carries the job id; it counts
// towards GitHub's limits, and a config may not set it. Hosts use it in
// the workflows they write and when they read a payload themselves.
const JobIDKey = "job_id"

// defaultRef is the ref dispatched when the config names none.
const defaultRef = "main"

// WorkflowRef names a workflow by numeric id or by file name: the
// workflowId of a workflow_dispatch config, as AgentConfig.Workflow.
type WorkflowRef struct {
	ID   int64  // numeric workflow id, or 0
	File string // file name such as "deploy.yml", or ""
}

// String returns the id or the file name, as GitHub's API paths take it.
func (w WorkflowRef) String() string {
	if w.ID != 0 {
		return strconv.FormatInt(w.ID, 10)
	}
	return w.File
}

// AgentConfig is a rendered, validated job agent config: what Render
// returns. Package dispatch acts on it; hosts read it to show or check
// what a job will do. Fields of other kinds than Type are zero.
type AgentConfig struct {
	// Type is the kind of config; KindWorkflowDispatch when unset.
	Type Kind

	// InstallationID selects the App installation; 0 leaves it to the
	// credential resolver.
	InstallationID int64
	Owner, Repo    string
	// Token is a static token or a "{{ secrets.NAME }}" reference, used
	// when no installation applies. It is not a template: secret
	// references are resolved by the credentials package.
	Token string

	// Ref is the branch (or tag) to run on; "main" when unset. For
	// pull requests it is the base branch.
	Ref string

	// workflow_dispatch
	Workflow WorkflowRef
	Inputs   map[string]string

	// repository_dispatch
	EventType     string
	ClientPayload map[string]any

	// deployment
	Environment string
	Task        string
	Description string
	Payload     map[string]any
	// RequiredContexts is nil to let the Dispatcher's default apply, an
	// empty slice to skip commit status checks.
	RequiredContexts []string
	AutoMerge        *bool

	// pull_request
	PullRequest *PullRequestSpec

	// Report says what of the job's status to mirror back to GitHub.
	Report ReportSpec
}

// ReportSpec is the "report" of a config: what of a job's status to mirror
// back to GitHub. Package status acts on it (AgentConfig.Report).
type ReportSpec struct {
	// DeploymentStatus mirrors the status onto the job's deployment, as
	// deployment statuses. It applies to type deployment, where it is on
	// unless set to false.
	DeploymentStatus bool
	// CheckRun, when set, mirrors the status onto a check run.
	CheckRun *CheckRunSpec
}

// CheckRunSpec is the "report.checkRun" of a config: the check run that
// mirrors a job's status, and the commit it is attached to.
type CheckRunSpec struct {
	Name    string
	HeadSHA string
}

// PullRequestSpec is the pull request a pull_request config opens
// (AgentConfig.PullRequest).
type PullRequestSpec struct {
	// Branch is the head branch to create; by default "ghbridge/job-<id>".
	Branch        string
	Title, Body   string
	CommitMessage string
	Draft         bool
	// Files maps repository paths to their new content.
	Files map[string]string
}

// Repository returns "owner/repo", as logs and GitHub's full names
// spell it.
func (c AgentConfig) Repository() string { return c.Owner + "/" + c.Repo }

// commonFields are the fields every kind accepts.
var commonFields = []string{"type", "installationId", "owner", "repo", "ref", "token", "template", "report"}

// Render renders a job agent config against the job context and returns
// it typed and validated: every string (and object key) holding a
// template is rendered, and a "template" key's string, rendered, adds
// the fields of the JSON object it makes (a field set twice is an
// error). A top-level "token" is copied as it is: it may be a
// "{{ secrets.NAME }}" reference. cfg is the config as JSON.
//
// Errors are *FieldError values matching a sentinel error of this
// package and failure.ErrInvalidJobAgent; validation failures match
// ErrInvalidConfig. Package dispatch calls it for each job; hosts call
// it to check a config when it is submitted, before a job is accepted.
func (r *Renderer) Render(ctx context.Context, cfg json.RawMessage, c Context) (AgentConfig, error) {
	cacheable := len(cfg) <= maxCachedConfig
	var n *node
	if cacheable {
		n, _ = r.compiled.get(string(cfg))
	}
	fresh := n == nil
	if fresh {
		var m map[string]any
		if err := decodeJSONObject("", string(cfg), &m); err != nil {
			e := err.(*FieldError)
			e.Detail = "the agent config itself: " + e.Detail
			return AgentConfig{}, e
		}
		var err error
		if n, err = r.compileRoot(m); err != nil {
			return AgentConfig{}, err
		}
		if cacheable {
			r.compiled.add(string(cfg), n, int64(len(cfg))*decodedBytesPerByte+entryOverhead)
		}
	}
	run := r.newRun(ctx, c)
	// A config decoded for this call alone lends its values to the
	// result; a cached one is copied.
	run.owned = fresh && !cacheable
	out, err := run.document(n)
	if err != nil {
		return AgentConfig{}, err
	}
	return parseAgentConfig(out, c.JobID)
}

// maxCachedConfig is the largest config kept compiled. Larger ones are
// rare and compiled on each call; not copying their values then keeps
// the cost of one call at about that of decoding the JSON.
const maxCachedConfig = 64 << 10

// parseAgentConfig types and validates an already rendered config. jobID
// is the job the config is for; it is needed to check GitHub's limits,
// which count the job id ghbridge adds.
func parseAgentConfig(m map[string]any, jobID string) (AgentConfig, error) {
	p := parser{m: m}
	c := AgentConfig{Type: Kind(p.str("type"))}
	if c.Type == "" {
		c.Type = KindWorkflowDispatch
	}
	kind, ok := kinds[c.Type]
	if !ok {
		return AgentConfig{}, invalid("type", "unknown type %q; use workflow_dispatch, repository_dispatch, deployment or pull_request", c.Type)
	}
	for k := range m {
		if !slices.Contains(commonFields, k) && !slices.Contains(kind.fields, k) {
			return AgentConfig{}, invalid(k, "unknown field for type %s%s", c.Type, suggest(k, append(slices.Clone(commonFields), kind.fields...)))
		}
	}
	for _, step := range []func(*parser, *AgentConfig, string) error{parseCommon, parseReport, kind.parse} {
		if err := step(&p, &c, jobID); err != nil {
			return AgentConfig{}, err
		}
	}
	return c, nil
}

// kind is how one type of agent config is parsed: its own fields, and the
// step that reads them.
type kind struct {
	fields []string
	parse  func(p *parser, c *AgentConfig, jobID string) error
}

var kinds = map[Kind]kind{
	KindWorkflowDispatch:   {[]string{"workflowId", "inputs"}, parseWorkflowDispatch},
	KindRepositoryDispatch: {[]string{"eventType", "clientPayload"}, parseRepositoryDispatch},
	KindDeployment:         {[]string{"environment", "task", "description", "payload", "requiredContexts", "autoMerge"}, parseDeployment},
	KindPullRequest:        {[]string{"branch", "title", "body", "commitMessage", "draft", "files"}, parsePullRequest},
}

// parseCommon reads the fields every kind has: where and as whom.
func parseCommon(p *parser, c *AgentConfig, _ string) error {
	c.InstallationID = p.int64("installationId")
	c.Owner, c.Repo = p.str("owner"), p.str("repo")
	c.Token = p.str("token")
	c.Ref = p.str("ref")
	if p.err != nil {
		return p.err
	}
	if c.InstallationID < 0 {
		return invalid("installationId", "must be a positive number")
	}
	if err := checkName("owner", c.Owner); err != nil {
		return err
	}
	if err := checkName("repo", c.Repo); err != nil {
		return err
	}
	if c.Ref == "" {
		c.Ref = defaultRef
	}
	if strings.ContainsAny(c.Ref, " \t\n~^:?*[\\") {
		return invalid("ref", "%q is not a valid git ref", c.Ref)
	}
	return nil
}

func parseReport(p *parser, c *AgentConfig, _ string) error { return p.report(c) }

func parseWorkflowDispatch(p *parser, c *AgentConfig, _ string) error {
	c.Workflow = p.workflow("workflowId")
	c.Inputs = p.stringMap("inputs")
	if p.err != nil {
		return p.err
	}
	if _, ok := c.Inputs[JobIDKey]; ok {
		return invalid("inputs."+JobIDKey, "is set by ghbridge to the job id; remove it")
	}
	if len(c.Inputs)+1 > maxWorkflowInputs {
		return invalid("inputs", "%d inputs plus %s exceed GitHub's limit of %d", len(c.Inputs), JobIDKey, maxWorkflowInputs)
	}
	return nil
}

func parseRepositoryDispatch(p *parser, c *AgentConfig, jobID string) error {
	c.EventType = p.str("eventType")
	c.ClientPayload = p.object("clientPayload")
	if p.err != nil {
		return p.err
	}
	switch {
	case c.EventType == "":
		return invalid("eventType", "is required for repository_dispatch")
	case utf8.RuneCountInString(c.EventType) > maxEventTypeLength:
		return invalid("eventType", "is %d characters; GitHub allows %d", utf8.RuneCountInString(c.EventType), maxEventTypeLength)
	}
	if _, ok := c.ClientPayload[JobIDKey]; ok {
		return invalid("clientPayload."+JobIDKey, "is set by ghbridge to the job id; remove it")
	}
	if len(c.ClientPayload)+1 > maxClientPayloadKeys {
		return invalid("clientPayload", "%d top-level keys plus %s exceed GitHub's limit of %d; nest them in an object", len(c.ClientPayload), JobIDKey, maxClientPayloadKeys)
	}
	if n := clientPayloadSize(c.ClientPayload, jobID); n > MaxClientPayloadBytes {
		return invalid("clientPayload", "is %d bytes of JSON with %s; GitHub takes less than 64 KB (%d bytes); send a reference (a URL, an id) instead of the data", n, JobIDKey, MaxClientPayloadBytes)
	}
	return nil
}

func parseDeployment(p *parser, c *AgentConfig, _ string) error {
	c.Environment = p.str("environment")
	c.Task = p.str("task")
	c.Description = p.str("description")
	c.Payload = p.object("payload")
	c.RequiredContexts = p.stringList("requiredContexts")
	c.AutoMerge = p.boolPtr("autoMerge")
	if p.err != nil {
		return p.err
	}
	if c.Environment == "" {
		return invalid("environment", "is required for a deployment")
	}
	if _, ok := c.Payload[JobIDKey]; ok {
		return invalid("payload."+JobIDKey, "is set by ghbridge to the job id; remove it")
	}
	if len(c.Description) > 140 {
		return invalid("description", "is %d characters; GitHub allows 140", len(c.Description))
	}
	return nil
}

func parsePullRequest(p *parser, c *AgentConfig, jobID string) error {
	pr := &PullRequestSpec{
		Branch:        p.str("branch"),
		Title:         p.str("title"),
		Body:          p.str("body"),
		CommitMessage: p.str("commitMessage"),
		Draft:         p.bool("draft"),
		Files:         p.stringMap("files"),
	}
	if p.err != nil {
		return p.err
	}
	if pr.Branch == "" {
		pr.Branch = "ghbridge/job-" + jobID
	}
	if pr.Title == "" {
		return invalid("title", "is required for a pull request")
	}
	if len(pr.Files) == 0 {
		return invalid("files", "is required for a pull request: map each path to its new content")
	}
	for f := range pr.Files {
		if f == "" || strings.HasPrefix(f, "/") || path.Clean(f) != f || strings.HasPrefix(f, "../") || f == ".." {
			return invalid("files", "%q is not a clean relative path", f)
		}
	}
	if strings.ContainsAny(pr.Branch, " \t\n~^:?*[\\") || pr.Branch == c.Ref {
		return invalid("branch", "%q cannot be the head branch (it must be a valid new branch, not the base %q)", pr.Branch, c.Ref)
	}
	if pr.CommitMessage == "" {
		pr.CommitMessage = pr.Title
	}
	c.PullRequest = pr
	return nil
}

// report parses the "report" object.
func (p *parser) report(c *AgentConfig) error {
	c.Report.DeploymentStatus = c.Type == KindDeployment
	obj := p.object("report")
	if p.err != nil || obj == nil {
		return p.err
	}
	for k := range obj {
		if k != "deploymentStatus" && k != "checkRun" {
			return invalid("report."+k, "unknown field; use deploymentStatus or checkRun")
		}
	}
	sub := parser{m: obj}
	if ds := sub.boolPtr("deploymentStatus"); ds != nil {
		if *ds && c.Type != KindDeployment {
			return invalid("report.deploymentStatus", "needs type deployment: only deployments have deployment statuses")
		}
		c.Report.DeploymentStatus = *ds
	}
	if cr := sub.object("checkRun"); cr != nil {
		crp := parser{m: cr}
		spec := &CheckRunSpec{Name: crp.str("name"), HeadSHA: crp.str("headSha")}
		if crp.err != nil {
			return prefixed("report.checkRun.", crp.err)
		}
		switch {
		case spec.Name == "":
			return invalid("report.checkRun.name", "is required")
		case len(spec.HeadSHA) != 40 || strings.Trim(strings.ToLower(spec.HeadSHA), "0123456789abcdef") != "":
			return invalid("report.checkRun.headSha", "must be the 40-character commit SHA the check run belongs to")
		}
		c.Report.CheckRun = spec
	}
	if sub.err != nil {
		return prefixed("report.", sub.err)
	}
	return nil
}

func prefixed(prefix string, err error) error {
	if e, ok := err.(*FieldError); ok {
		c := *e
		c.Field = prefix + c.Field
		return &c
	}
	return err
}

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Kind: ErrInvalidConfig, Detail: fmt.Sprintf(format, args...)}
}

// Limits of GitHub's account and repository names.
const (
	maxOwnerLength = 39
	maxRepoLength  = 100
)

// checkName checks owner and repo against GitHub's naming rules before
// they reach a request path: an owner is 1 to 39 letters, digits and
// single hyphens, neither starting nor ending with one; a repository is
// 1 to 100 letters, digits, '-', '_' and '.', and not "." or "..".
func checkName(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if field == "owner" {
		if len(v) > maxOwnerLength || !validOwner(v) {
			return invalid(field, "%q is not a GitHub owner name: use 1 to %d letters, digits or single hyphens, not starting or ending with a hyphen", truncateForError(v), maxOwnerLength)
		}
		return nil
	}
	if len(v) > maxRepoLength || v == "." || v == ".." || strings.TrimFunc(v, repoRune) != "" {
		return invalid(field, "%q is not a GitHub repo name: use 1 to %d letters, digits, '-', '_' or '.' (and not \".\" or \"..\")", truncateForError(v), maxRepoLength)
	}
	return nil
}

func validOwner(v string) bool {
	if v[0] == '-' || v[len(v)-1] == '-' || strings.Contains(v, "--") {
		return false
	}
	return strings.TrimFunc(v, func(r rune) bool { return r == '-' || asciiAlnum(r) }) == ""
}

func repoRune(r rune) bool { return r == '-' || r == '_' || r == '.' || asciiAlnum(r) }

func asciiAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// truncateForError keeps error messages short when a rendered value is
// long.
func truncateForError(v string) string {
	if len(v) <= 120 {
		return v
	}
	return v[:120] + "..."
}

// suggest proposes the known field closest to an unknown one, for
// "workflowID" or "installation_id".
func suggest(k string, known []string) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	for _, f := range known {
		if norm(f) == norm(k) {
			return fmt.Sprintf("; did you mean %q?", f)
		}
	}
	return ""
}

// parser reads typed fields out of a rendered config, keeping the first
// error.
type parser struct {
	m   map[string]any
	err error
}

func (p *parser) fail(field, format string, args ...any) {
	if p.err == nil {
		p.err = invalid(field, format, args...)
	}
}

func (p *parser) str(k string) string {
	v, ok := p.m[k]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail(k, "must be a string, got %s", jsonType(v))
	}
	return strings.TrimSpace(s)
}

func (p *parser) bool(k string) bool {
	b := p.boolPtr(k)
	return b != nil && *b
}

func (p *parser) boolPtr(k string) *bool {
	v, ok := p.m[k]
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case bool:
		return &x
	case string: // a template renders to text
		if b, err := strconv.ParseBool(x); err == nil {
			return &b
		}
	}
	p.fail(k, "must be true or false, got %s", jsonType(v))
	return nil
}

// number reads a whole number given as a JSON number or as the text a
// template rendered.
func number(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case int64:
		return x, true
	case int:
		return int64(x), true
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	case string:
		x = strings.TrimSpace(x)
		if x == "" || (x[0] < '0' || x[0] > '9') && x[0] != '-' {
			return 0, false
		}
		i, err := strconv.ParseInt(x, 10, 64)
		return i, err == nil
	}
	return 0, false
}

func (p *parser) int64(k string) int64 {
	v, ok := p.m[k]
	if !ok || v == nil || v == "" {
		return 0
	}
	n, ok := number(v)
	if !ok {
		p.fail(k, "must be a whole number, got %s", jsonType(v))
	}
	return n
}

func (p *parser) workflow(k string) WorkflowRef {
	v, ok := p.m[k]
	if !ok || v == nil || v == "" {
		p.fail(k, "is required: the workflow's numeric id or its file name, e.g. deploy.yml")
		return WorkflowRef{}
	}
	if n, ok := number(v); ok {
		if n <= 0 {
			p.fail(k, "must be a positive workflow id")
		}
		return WorkflowRef{ID: n}
	}
	s, isStr := v.(string)
	s = strings.TrimSpace(s)
	name := path.Base(s)
	if !isStr || (!strings.HasSuffix(name, ".yml") && !strings.HasSuffix(name, ".yaml")) || len(name) <= len(".yml") {
		p.fail(k, "%s is neither a numeric workflow id nor a workflow file name ending in .yml or .yaml", jsonText(v))
		return WorkflowRef{}
	}
	// ".github/workflows/deploy.yml" is accepted and reduced to its file
	// name, which is what the API takes.
	return WorkflowRef{File: name}
}

func (p *parser) object(k string) map[string]any {
	v, ok := p.m[k]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(k, "must be an object, got %s", jsonType(v))
	}
	return m
}

func (p *parser) stringMap(k string) map[string]string {
	obj := p.object(k)
	if obj == nil {
		return nil
	}
	out := make(map[string]string, len(obj))
	for name, v := range obj {
		s, ok := v.(string)
		if !ok {
			p.fail(k+"."+name, "must be a string, got %s; quote it (GitHub passes inputs as strings)", jsonType(v))
			return nil
		}
		out[name] = s
	}
	return out
}

func (p *parser) stringList(k string) []string {
	v, ok := p.m[k]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		p.fail(k, "must be a list of strings, got %s", jsonType(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			p.fail(fmt.Sprintf("%s[%d]", k, i), "must be a string, got %s", jsonType(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int64, int, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// clientPayloadSize returns the size of payload as JSON once the job id is
// added, as GitHub measures it against MaxClientPayloadBytes; it is -1
// when payload cannot be encoded.
func clientPayloadSize(payload map[string]any, jobID string) int {
	p := make(map[string]any, len(payload)+1)
	for k, v := range payload {
		p[k] = v
	}
	p[JobIDKey] = jobID
	b, err := json.Marshal(p)
	if err != nil {
		return -1
	}
	return len(b)
}
