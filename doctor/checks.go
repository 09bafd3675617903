package doctor

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/template"
)

// Requirement is what one job kind needs of the App (see Requirements).
type Requirement struct {
	Kind template.Kind
	// Events the App must subscribe to for the kind's status to follow
	// GitHub; Optional events improve it (step progress).
	Events, Optional []string
	// Permissions maps a repository permission to the level needed.
	Permissions map[string]string
}

// requirements are the events and permissions each job kind needs. The
// README's table is checked against it.
var requirements = []Requirement{
	{Kind: template.KindWorkflowDispatch, Events: []string{"workflow_run"}, Optional: []string{"workflow_job"},
		Permissions: map[string]string{"actions": "write", "contents": "read", "metadata": "read"}},
	{Kind: template.KindRepositoryDispatch, Events: []string{"workflow_run"}, Optional: []string{"workflow_job"},
		Permissions: map[string]string{"contents": "write", "actions": "read", "metadata": "read"}},
	{Kind: template.KindDeployment, Events: []string{"deployment_status"},
		Permissions: map[string]string{"deployments": "write", "metadata": "read"}},
	{Kind: template.KindPullRequest, Events: []string{"pull_request"},
		Permissions: map[string]string{"pull_requests": "write", "contents": "write", "metadata": "read"}},
}

// Requirements returns what each job kind needs, for documentation and
// for hosts' own checks: a host that creates its App from a manifest, or
// shows an operator what to grant, takes the events and permissions from
// it.
func Requirements() []Requirement {
	out := make([]Requirement, len(requirements))
	for i, r := range requirements {
		out[i] = Requirement{Kind: r.Kind, Events: slices.Clone(r.Events), Optional: slices.Clone(r.Optional), Permissions: maps.Clone(r.Permissions)}
	}
	return out
}

// needs merges the requirements of kinds: needed and optional events,
// and each permission at its highest level.
func needs(kinds []template.Kind, reportChecks bool) (events, optional []string, perms map[string]string) {
	perms = map[string]string{}
	for _, r := range requirements {
		if !slices.Contains(kinds, r.Kind) {
			continue
		}
		events = append(events, r.Events...)
		optional = append(optional, r.Optional...)
		for p, lvl := range r.Permissions {
			if rank(lvl) > rank(perms[p]) {
				perms[p] = lvl
			}
		}
	}
	if reportChecks {
		perms["checks"] = "write"
	}
	slices.Sort(events)
	slices.Sort(optional)
	return slices.Compact(events), slices.Compact(optional), perms
}

func rank(level string) int {
	switch level {
	case "read":
		return 1
	case "write":
		return 2
	case "admin":
		return 3
	}
	return 0
}

func (d *run) webhookConfig(ctx context.Context) Finding {
	hc, _, err := d.app.Apps.GetHookConfig(ctx)
	if err != nil {
		return d.failed(err, "the App's JWT", "reading the App's webhook configuration (GET /app/hook/config)", "check the App's webhook settings (App settings > General > Webhook)")
	}
	var problems, fixes []string
	switch u := hc.GetURL(); {
	case u == "":
		problems = append(problems, "no webhook URL")
		fixes = append(fixes, "App settings > General > Webhook: tick Active and set the URL to https://YOUR-HOST/api/github/webhook")
	case d.cfg.WebhookURL != "" && u != d.cfg.WebhookURL:
		problems = append(problems, fmt.Sprintf("URL %s, but this server is %s", u, d.cfg.WebhookURL))
		fixes = append(fixes, "set the App's webhook URL to "+d.cfg.WebhookURL)
	}
	if ct := hc.GetContentType(); ct != "json" {
		problems = append(problems, fmt.Sprintf("content type %q", cmp.Or(ct, "form")))
		fixes = append(fixes, "prefer application/json (form deliveries work, but json is what GitHub recommends)")
	}
	if hc.GetSecret() == "" {
		problems = append(problems, "no secret")
		fixes = append(fixes, "App settings > General > Webhook secret: set the value of "+d.secretName())
	}
	if hc.GetInsecureSSL() == "1" {
		problems = append(problems, "SSL verification off")
		fixes = append(fixes, "turn SSL verification on in the App's webhook settings")
	}
	if len(problems) == 0 {
		return Finding{Grade: Pass, Detail: fmt.Sprintf("URL %s, content type json, secret set", hc.GetURL())}
	}
	st := Fail
	if len(problems) == 1 && strings.HasPrefix(problems[0], "content type") {
		st = Warn
	}
	return Finding{Grade: st, Detail: "the App's webhook has " + strings.Join(problems, ", "), Fix: strings.Join(fixes, "; ")}
}

// recent lists the App's deliveries of the last 24 hours, newest first.
func (d *run) recent(ctx context.Context) ([]*gh.HookDelivery, error) {
	since := d.cfg.Now().Add(-24 * time.Hour)
	var out []*gh.HookDelivery
	opts := &gh.ListCursorOptions{PerPage: 100}
	for range 10 {
		ds, resp, err := d.app.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return out, err
		}
		for _, x := range ds {
			if x.GetDeliveredAt().Before(since) {
				return out, nil
			}
			out = append(out, x)
		}
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	return out, nil
}

// webhookSecret checks the configured secret against the App's. GitHub
// never returns a secret, so the check verifies the signature GitHub put
// on a recent delivery (its request headers and payload, as GET
// /app/hook/deliveries/{id} returns them) with the configured secrets.
func (d *run) webhookSecret(ctx context.Context) Finding {
	if len(d.cfg.WebhookSecrets) == 0 {
		return Finding{Grade: Fail, Detail: d.secretName() + " is not set: deliveries cannot be verified, so the webhook route answers 503",
			Fix: "set it to the App's webhook secret (a comma-separated list during a rotation)"}
	}
	ds, err := d.recent(ctx)
	if err != nil {
		return d.failed(err, "the App's JWT", "listing the App's deliveries (GET /app/hook/deliveries)", "")
	}
	if len(ds) == 0 {
		return Finding{Grade: Warn, Detail: "cannot tell whether " + d.secretName() + " matches the App's: GitHub never returns the secret, and there was no delivery in the last 24 h whose signature could be checked",
			Fix: "run a job (or redeliver a delivery from App settings > Advanced) and run the doctor again"}
	}
	// Newest first; a few are enough.
	for _, x := range ds[:min(len(ds), 3)] {
		full, _, err := d.app.Apps.GetHookDelivery(ctx, x.GetID())
		if err != nil {
			return d.failed(err, "the App's JWT", fmt.Sprintf("reading delivery %d", x.GetID()), "")
		}
		sig, payload := signatureOf(full)
		if payload == nil {
			continue
		}
		if sig == "" {
			return Finding{Grade: Fail, Detail: fmt.Sprintf("delivery %d (%s) was sent unsigned: the App's webhook has no secret", x.GetID(), x.GetEvent()),
				Fix: "App settings > General > Webhook secret: set the value of " + d.secretName()}
		}
		if i, ok := verifies(sig, payload, d.cfg.WebhookSecrets); ok {
			which := "the secret"
			if len(d.cfg.WebhookSecrets) > 1 {
				which = fmt.Sprintf("secret %d of %d", i+1, len(d.cfg.WebhookSecrets))
			}
			return Finding{Grade: Pass, Detail: fmt.Sprintf("delivery %d (%s, %s) verifies with %s of %s", x.GetID(), x.GetEvent(), x.GetDeliveredAt().Format(time.RFC3339), which, d.secretName())}
		}
		detail := fmt.Sprintf("the signature of delivery %d (%s, %s) verifies with none of the configured secrets", x.GetID(), x.GetEvent(), x.GetDeliveredAt().Format(time.RFC3339))
		switch code := x.GetStatusCode(); {
		case code == 401:
			detail += ", and the receiver rejected it with 401"
		case code >= 200 && code < 300:
			// The receiver accepted it, so GitHub's copy of the payload
			// may differ in bytes from what was sent: not conclusive.
			return Finding{Grade: Warn, Detail: detail + ", but the receiver accepted it (GitHub's stored copy may differ in bytes); inconclusive",
				Fix: "if deliveries fail with 401, set " + d.secretName() + " to the App's webhook secret"}
		}
		return Finding{Grade: Fail, Detail: detail + ": the App's webhook secret differs from " + d.secretName(),
			Fix: "set the same value in App settings > General > Webhook secret and in " + d.secretName() + " (during a rotation list both, new first)"}
	}
	return Finding{Grade: Warn, Detail: "GitHub's delivery log holds no request to verify the secret with", Fix: "check the secret by hand"}
}

func signatureOf(d *gh.HookDelivery) (sig string, payload []byte) {
	if d.Request == nil || d.Request.RawPayload == nil {
		return "", nil
	}
	for k, v := range d.Request.Headers {
		if strings.EqualFold(k, "X-Hub-Signature-256") {
			sig = v
		}
	}
	return sig, *d.Request.RawPayload
}

// verifies reports which secret signed payload. GitHub returns the
// payload as a JSON value, so both its bytes and their compact form are
// tried: a match is proof, a miss is strong evidence only.
func verifies(sig string, payload []byte, secrets []string) (int, bool) {
	want, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || !strings.HasPrefix(sig, "sha256=") {
		return 0, false
	}
	forms := [][]byte{payload}
	var compact bytes.Buffer
	if json.Compact(&compact, payload) == nil && !bytes.Equal(compact.Bytes(), payload) {
		forms = append(forms, compact.Bytes())
	}
	for i, s := range secrets {
		for _, body := range forms {
			m := hmac.New(sha256.New, []byte(s))
			m.Write(body)
			if hmac.Equal(m.Sum(nil), want) {
				return i, true
			}
		}
	}
	return 0, false
}

// deliveries reports deliveries of the last 24 h that never succeeded,
// the usual cause of "the status does not update".
func (d *run) deliveries(ctx context.Context) Finding {
	ds, err := d.recent(ctx)
	if err != nil {
		return d.failed(err, "the App's JWT", "listing the App's deliveries (GET /app/hook/deliveries)", "")
	}
	ok := map[string]bool{}
	for _, x := range ds {
		if c := x.GetStatusCode(); c >= 200 && c < 300 {
			ok[x.GetGUID()] = true
		}
	}
	failed := map[int]int{}
	seen := map[string]bool{}
	n := 0
	for _, x := range ds {
		if ok[x.GetGUID()] || seen[x.GetGUID()] {
			continue
		}
		seen[x.GetGUID()] = true
		failed[x.GetStatusCode()]++
		n++
	}
	if n == 0 {
		return Finding{Grade: Pass, Detail: fmt.Sprintf("deliveries in the last 24 h: %d, none failed", len(ds))}
	}
	var parts, fixes []string
	for _, code := range slices.Sorted(maps.Keys(failed)) {
		what, fix := d.deliveryCode(code)
		parts = append(parts, fmt.Sprintf("%d× %s", failed[code], what))
		if !slices.Contains(fixes, fix) {
			fixes = append(fixes, fix)
		}
	}
	return Finding{Grade: Fail, Detail: fmt.Sprintf("%d of %d deliveries in the last 24 h failed: %s", n, len(seen)+len(ok), strings.Join(parts, ", ")),
		Fix: strings.Join(fixes, "; ") + "; the server redelivers failed deliveries in its reconcile loop once fixed"}
}

func (d *run) deliveryCode(code int) (what, fix string) {
	switch {
	case code == 0:
		return "no answer (GitHub could not connect)", "make the webhook URL reachable from GitHub (public DNS, TLS certificate, firewall)"
	case code == 401:
		return "401 (signature rejected)", "make " + d.secretName() + " equal to the App's webhook secret"
	case code == 404:
		return "404 (wrong path)", "the webhook URL must end in /api/github/webhook"
	case code == 503:
		return "503 (webhooks off, or busy)", "set " + d.secretName() + " on the server"
	case code >= 500:
		return fmt.Sprintf("%d (server error)", code), "see the server's log for the delivery id"
	}
	return fmt.Sprintf("%d", code), "see the delivery in App settings > Advanced"
}

func (d *run) events(ctx context.Context) Finding {
	need, optional, _ := needs(d.cfg.Kinds, d.cfg.ReportChecks)
	var missing, missingOpt []string
	for _, e := range need {
		if !slices.Contains(d.meta.Events, e) {
			missing = append(missing, e)
		}
	}
	for _, e := range optional {
		if !slices.Contains(d.meta.Events, e) {
			missingOpt = append(missingOpt, e)
		}
	}
	switch {
	case len(missing) > 0:
		return Finding{Grade: Fail, Detail: fmt.Sprintf("the App does not subscribe to %s (it subscribes to %s); jobs never leave pending/in_progress by webhook",
			strings.Join(missing, ", "), listOr(d.meta.Events, "nothing")),
			Fix: "App settings > Permissions & events > Subscribe to events: tick " + strings.Join(eventNames(missing), ", ")}
	case len(missingOpt) > 0:
		return Finding{Grade: Warn, Detail: fmt.Sprintf("subscribed to %s; not to %s (optional: the step running is not shown)", strings.Join(need, ", "), strings.Join(missingOpt, ", ")),
			Fix: "App settings > Permissions & events: tick " + strings.Join(eventNames(missingOpt), ", ")}
	}
	return Finding{Grade: Pass, Detail: "subscribed to " + strings.Join(append(need, optional...), ", ")}
}

// eventNames are the check box labels of the App settings page.
func eventNames(events []string) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = strings.ReplaceAll(cases(e), "_", " ")
	}
	return out
}

func cases(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}

func (d *run) permissions(ctx context.Context) Finding {
	_, _, need := needs(d.cfg.Kinds, d.cfg.ReportChecks)
	insts, _, err := d.app.Apps.ListInstallations(ctx, &gh.ListOptions{PerPage: 100})
	if err != nil {
		return d.failed(err, "the App's JWT", "listing installations (GET /app/installations)", "")
	}
	if len(insts) == 0 {
		return Finding{Grade: Fail, Detail: "the App has no installation", Fix: fmt.Sprintf("install it on the account that owns the repositories (https://github.com/apps/%s/installations/new)", d.meta.GetSlug())}
	}
	var bad []string
	for _, in := range insts {
		have := permsOf(in.GetPermissions())
		var missing []string
		for _, p := range slices.Sorted(maps.Keys(need)) {
			if rank(have[p]) < rank(need[p]) {
				missing = append(missing, fmt.Sprintf("%s: %s (has %s)", p, need[p], cmp.Or(have[p], "none")))
			}
		}
		if len(missing) > 0 {
			bad = append(bad, fmt.Sprintf("installation %d (%s) lacks %s", in.GetID(), in.GetAccount().GetLogin(), strings.Join(missing, ", ")))
		}
	}
	if len(bad) > 0 {
		return Finding{Grade: Fail, Detail: strings.Join(bad, "; "),
			Fix: "App settings > Permissions & events > Repository permissions: grant them; then an owner of each account accepts the new permissions (Settings > GitHub Apps > Configure)"}
	}
	return Finding{Grade: Pass, Detail: fmt.Sprintf("%d installation(s) grant %s", len(insts), permList(need))}
}

func permList(p map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		out = append(out, k+": "+p[k])
	}
	return strings.Join(out, ", ")
}

// permsOf reads go-github's InstallationPermissions as a map.
func permsOf(p *gh.InstallationPermissions) map[string]string {
	out := map[string]string{}
	if p == nil {
		return out
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return out
	}
	_ = json.Unmarshal(raw, &out)
	return out
}
