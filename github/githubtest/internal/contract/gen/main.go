// Command gen extracts, from GitHub's published artifacts, what the fake
// GitHub is checked against: the REST operations ghbridge calls (with
// every schema, parameter and response they reference) from the npm
// package @octokit/openapi, and the recorded webhook payloads of the
// events ghbridge decodes from @octokit/webhooks-examples.
//
// Refresh (from the repository root):
//
//	cd /tmp && npm pack @octokit/openapi@VERSION @octokit/webhooks-examples@VERSION
//	go run ./github/githubtest/internal/contract/gen \
//	    -openapi /tmp/octokit-openapi-VERSION.tgz \
//	    -examples /tmp/octokit-webhooks-examples-VERSION.tgz
//
// The outputs record the package name and version they came from.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"slices"
	"strings"
)

// Operations are the REST operations ghbridge calls, and the few more the
// fake serves, as "METHOD path" in the description's spelling.
var Operations = []string{
	"GET /app",
	"GET /app/installations",
	"GET /app/installations/{installation_id}",
	"DELETE /app/installations/{installation_id}",
	"POST /app/installations/{installation_id}/access_tokens",
	"GET /app/hook/config",
	"GET /app/hook/deliveries",
	"GET /app/hook/deliveries/{delivery_id}",
	"POST /app/hook/deliveries/{delivery_id}/attempts",
	"GET /installation/repositories",
	"DELETE /installation/token",
	"GET /repos/{owner}/{repo}",
	"GET /repos/{owner}/{repo}/installation",
	"GET /repos/{owner}/{repo}/branches/{branch}",
	"GET /repos/{owner}/{repo}/contents/{path}",
	"GET /repos/{owner}/{repo}/actions/workflows",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}",
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
	"GET /repos/{owner}/{repo}/actions/runs",
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule",
	"POST /repos/{owner}/{repo}/dispatches",
	"GET /repos/{owner}/{repo}/deployments",
	"POST /repos/{owner}/{repo}/deployments",
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}",
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/check-runs",
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/git/ref/{ref}",
	"POST /repos/{owner}/{repo}/git/refs",
	"PATCH /repos/{owner}/{repo}/git/refs/{ref}",
	"GET /repos/{owner}/{repo}/git/commits/{commit_sha}",
	"POST /repos/{owner}/{repo}/git/commits",
	"POST /repos/{owner}/{repo}/git/trees",
	"GET /repos/{owner}/{repo}/pulls",
	"POST /repos/{owner}/{repo}/pulls",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}",
	"PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"GET /user/installations",
	"GET /repos/{owner}/{repo}/hooks",
	"POST /repos/{owner}/{repo}/hooks",
	"GET /repos/{owner}/{repo}/hooks/{hook_id}",
	"PATCH /repos/{owner}/{repo}/hooks/{hook_id}",
	"GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries",
	"GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}",
	"POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
}

// Events are the webhook events ghbridge decodes or routes.
var Events = []string{
	"check_run", "deployment_status", "installation", "installation_repositories",
	"ping", "pull_request", "workflow_job", "workflow_run",
}

func main() {
	openapi := flag.String("openapi", "", "path to the @octokit/openapi npm tarball")
	examples := flag.String("examples", "", "path to the @octokit/webhooks-examples npm tarball")
	specOut := flag.String("spec-out", "github/githubtest/testdata/openapi.json", "where the extracted description goes")
	corpusOut := flag.String("corpus-out", "webhook/testdata/corpus/webhooks-examples.json", "where the payload corpus goes")
	flag.Parse()
	if *openapi == "" && *examples == "" {
		log.Fatal("nothing to do: give -openapi and/or -examples")
	}
	if *openapi != "" {
		if err := extractSpec(*openapi, *specOut); err != nil {
			log.Fatal(err)
		}
	}
	if *examples != "" {
		if err := extractCorpus(*examples, *corpusOut); err != nil {
			log.Fatal(err)
		}
	}
}

// readPackage returns package.json's name and version and the named
// files of an npm tarball.
func readPackage(tgz string, want ...string) (name, version string, files map[string][]byte, err error) {
	f, err := os.Open(tgz)
	if err != nil {
		return "", "", nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", tgz, err)
	}
	files = map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("%s: %w", tgz, err)
		}
		p := strings.TrimPrefix(h.Name, "package/")
		if p != "package.json" && !slices.Contains(want, p) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return "", "", nil, err
		}
		files[p] = b
	}
	var pkg struct{ Name, Version, License string }
	if err := json.Unmarshal(files["package.json"], &pkg); err != nil {
		return "", "", nil, fmt.Errorf("%s: package.json: %w", tgz, err)
	}
	for _, w := range want {
		if files[w] == nil {
			return "", "", nil, fmt.Errorf("%s has no %s", tgz, w)
		}
	}
	return pkg.Name, pkg.Version, files, nil
}

func extractSpec(tgz, out string) error {
	const file = "generated/api.github.com.json"
	name, version, files, err := readPackage(tgz, file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(files[file], &doc); err != nil {
		return err
	}
	paths := doc["paths"].(map[string]any)
	outPaths := map[string]any{}
	refs := map[string]bool{}
	for _, op := range Operations {
		method, path, _ := strings.Cut(op, " ")
		item, ok := paths[path].(map[string]any)
		if !ok {
			return fmt.Errorf("%s %s: no path %s", name, version, path)
		}
		o, ok := item[strings.ToLower(method)]
		if !ok {
			return fmt.Errorf("%s %s: no operation %s", name, version, op)
		}
		oi, _ := outPaths[path].(map[string]any)
		if oi == nil {
			oi = map[string]any{}
			outPaths[path] = oi
		}
		o = strip(o, false)
		if rs, ok := o.(map[string]any)["responses"].(map[string]any); ok {
			for _, r := range rs {
				describe(r)
			}
		}
		oi[strings.ToLower(method)] = o
		collectRefs(o, refs)
	}
	// Follow references until every one resolves.
	comps := doc["components"].(map[string]any)
	outComps := map[string]any{}
	for done := map[string]bool{}; ; {
		var todo []string
		for r := range refs {
			if !done[r] {
				todo = append(todo, r)
			}
		}
		if len(todo) == 0 {
			break
		}
		for _, r := range todo {
			done[r] = true
			parts := strings.Split(strings.TrimPrefix(r, "#/components/"), "/")
			if len(parts) != 2 {
				return fmt.Errorf("unexpected reference %s", r)
			}
			v := comps[parts[0]].(map[string]any)[parts[1]]
			if v == nil {
				return fmt.Errorf("unresolved reference %s", r)
			}
			v = strip(v, false)
			if parts[0] == "responses" {
				describe(v)
			}
			kind, _ := outComps[parts[0]].(map[string]any)
			if kind == nil {
				kind = map[string]any{}
				outComps[parts[0]] = kind
			}
			kind[parts[1]] = v
			collectRefs(v, refs)
		}
	}
	res := map[string]any{
		"openapi": doc["openapi"],
		"info": map[string]any{
			"title":   "GitHub REST API: the operations ghbridge calls",
			"version": version,
			"x-source": map[string]any{
				"package": name, "version": version, "file": file, "license": "MIT",
				"upstream":   "https://github.com/github/rest-api-description",
				"extraction": "go run ./github/githubtest/internal/contract/gen",
				"operations": Operations,
			},
		},
		"servers":    []any{map[string]any{"url": "/api/v3"}},
		"paths":      outPaths,
		"components": outComps,
	}
	return writeJSON(out, res)
}

// strip drops documentation (descriptions, examples, docs links) that
// validation does not read, to keep the committed file small. inMap is
// true where keys are names (properties, components), not keywords.
func strip(v any, inMap bool) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if !inMap {
				switch k {
				case "examples", "example", "externalDocs", "x-github", "tags", "x-octokit":
					continue
				case "description", "summary":
					if _, ok := e.(string); ok {
						continue
					}
				}
			}
			out[k] = strip(e, !inMap && (k == "properties" || k == "responses" || k == "headers" || k == "content" || k == "variables"))
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = strip(e, false)
		}
		return out
	}
	return v
}

// describe gives a response object the empty description OpenAPI
// requires of it.
func describe(r any) {
	if m, ok := r.(map[string]any); ok && m["$ref"] == nil {
		m["description"] = ""
	}
}

func collectRefs(v any, refs map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				refs[s] = true
			}
			collectRefs(e, refs)
		}
	case []any:
		for _, e := range v {
			collectRefs(e, refs)
		}
	}
}

func extractCorpus(tgz, out string) error {
	const file = "api.github.com/index.json"
	name, version, files, err := readPackage(tgz, file)
	if err != nil {
		return err
	}
	var all []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(files[file], &all); err != nil {
		return err
	}
	events := map[string][]json.RawMessage{}
	for _, e := range all {
		if slices.Contains(Events, e.Name) {
			events[e.Name] = e.Examples
		}
	}
	for _, e := range Events {
		if len(events[e]) == 0 {
			return fmt.Errorf("%s %s has no examples of %s", name, version, e)
		}
	}
	// One compact payload a line: small, and diffs stay readable.
	for _, ex := range events {
		for i, raw := range ex {
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return err
			}
			ex[i] = buf.Bytes()
		}
	}
	return writeJSON(out, map[string]any{
		"source": map[string]any{
			"package": name, "version": version, "file": file,
			"license":    "MIT (Copyright (c) Octokit contributors); payloads recorded from GitHub",
			"upstream":   "https://github.com/octokit/webhooks",
			"extraction": "go run ./github/githubtest/internal/contract/gen",
		},
		"events": events,
	})
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	if c, ok := v.(map[string]any)["events"].(map[string][]json.RawMessage); ok {
		b, err = corpusJSON(v.(map[string]any)["source"], c)
		if err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s (%d bytes)", path, len(b)+1)
	return nil
}

// corpusJSON writes the corpus with one payload a line.
func corpusJSON(source any, events map[string][]json.RawMessage) ([]byte, error) {
	src, err := json.Marshal(source)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("{\"source\":")
	b.Write(src)
	b.WriteString(",\n\"events\":{")
	for i, name := range slices.Sorted(maps.Keys(events)) {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n%q:[", name)
		for j, p := range events[name] {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n")
			b.Write(p)
		}
		b.WriteString("]")
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}
