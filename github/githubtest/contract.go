package githubtest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// API versions the fake serves, as GitHub names them in the
// X-GitHub-Api-Version header.
const (
	// apiVersion20221128 is GitHub's first dated REST API version, the one
	// served when a request names none.
	apiVersion20221128 = "2022-11-28"
	// apiVersion20260310 drops return_run_details and the 204 answer of
	// workflow dispatches: the run is always returned.
	apiVersion20260310 = "2026-03-10"
)

// apiVersions lists the versions the fake serves, oldest first.
var apiVersions = []string{apiVersion20221128, apiVersion20260310}

// openapiJSON is the part of GitHub's OpenAPI description that covers
// the operations ghbridge calls, extracted from @octokit/openapi by
// internal/contract/gen.
//
//go:embed testdata/openapi.json
var openapiJSON []byte

// ContractReporter receives the fake's contract violations; a *testing.T or
// *testing.B is one. Hosts pass their test's t to WithContract (New does).
type ContractReporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// WithContract checks every request the server receives and every answer it
// sends against GitHub's OpenAPI description of the operation, in the API
// version the request asks for, and reports each mismatch to r (a test's t,
// so that the test that caused it fails). Answers to requests GitHub would
// refuse with an error are checked for GitHub's error shape. New sets it; a
// test that calls NewServer passes its t.
func WithContract(r ContractReporter) Option { return func(s *Server) { s.contract = r } }

// contract is the loaded description: one document that holds every
// operation as served in the first API version and, under a path of
// their own, the operations a later version changes, so that the shared
// schemas are loaded once.
type contract struct {
	// source is the package and version the description was extracted
	// from, such as "@octokit/openapi@23.0.2".
	source  string
	doc     *openapi3.T
	byShape map[string]contractRoute // "METHOD /shape/{}"
	// changed holds, by "version METHOD /path", the path under which doc
	// holds an operation as a later API version serves it.
	changed map[string]string
}

type contractRoute struct{ method, path string }

// pathItem returns the path item that holds rt's operation as served in
// API version v (the first version's for one the fake does not serve).
func (c *contract) pathItem(v string, rt contractRoute) *openapi3.PathItem {
	if p, ok := c.changed[v+" "+rt.method+" "+rt.path]; ok {
		return c.doc.Paths.Find(p)
	}
	return c.doc.Paths.Find(rt.path)
}

// loadContract loads the description once per process: it is immutable
// and shared by every Server.
var loadContract = sync.OnceValues(func() (*contract, error) {
	var doc map[string]any
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		return nil, fmt.Errorf("githubtest: reading the OpenAPI description: %w", err)
	}
	src := dig(doc, "info", "x-source")
	c := &contract{
		source:  fmt.Sprintf("%v@%v", src["package"], src["version"]),
		byShape: map[string]contractRoute{},
		changed: map[string]string{},
	}
	correctDescription(doc)
	paths, _ := doc["paths"].(map[string]any)
	later := map[string]any{} // path items of the operations later versions change
	for path, item := range paths {
		item := item.(map[string]any)
		for method, op := range item {
			o, ok := op.(map[string]any)
			m := strings.ToUpper(method)
			if !ok || !slices.Contains(httpMethods, m) {
				continue
			}
			c.byShape[m+" "+pathShape(path)] = contractRoute{method: m, path: path}
			changes, _ := o["x-github-breaking-changes"].([]any)
			delete(o, "x-github-breaking-changes")
			for i, v := range apiVersions {
				served, err := patched(o, changes, v)
				if err != nil {
					return nil, err
				}
				if i == 0 {
					item[method] = served
					continue
				}
				if !changedAfter(changes, apiVersions[0], v) {
					continue
				}
				// A literal first segment: the same parameters, a path
				// of its own; operation ids are unique in a document.
				p := "/" + v + path
				if id, ok := served["operationId"].(string); ok {
					served["operationId"] = id + "@" + v
				}
				c.changed[v+" "+m+" "+path] = p
				li, _ := later[p].(map[string]any)
				if li == nil {
					li = map[string]any{}
					if params, ok := item["parameters"]; ok {
						li["parameters"] = params
					}
					later[p] = li
				}
				li[method] = served
			}
		}
	}
	maps.Copy(paths, later)
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	t, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("githubtest: loading the OpenAPI description: %w", err)
	}
	if err := t.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("githubtest: the OpenAPI description is invalid: %w", err)
	}
	c.doc = t
	return c, nil
})

// httpMethods are the operations a path item of the description can hold.
var httpMethods = []string{
	http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead,
	http.MethodOptions, http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace,
}

// patched returns a copy of the operation op as served in API version v:
// the x-github-breaking-changes patches of versions up to v applied.
func patched(op map[string]any, changes []any, v string) (map[string]any, error) {
	out := deepCopy(op).(map[string]any)
	for _, ch := range changes {
		ch := ch.(map[string]any)
		if ver, _ := ch["version"].(string); ver > v {
			continue
		}
		switch patch := ch["patch"].(type) {
		case []any: // JSON Patch (RFC 6902)
			for _, p := range patch {
				if err := applyPatch(out, p.(map[string]any)); err != nil {
					return nil, fmt.Errorf("githubtest: API version %s: %w", v, err)
				}
			}
		case map[string]any: // JSON Merge Patch (RFC 7386)
			mergePatch(out, patch)
			// GitHub's merge patches add responses as {}, which OpenAPI
			// does not take without a description.
			responses, _ := out["responses"].(map[string]any)
			for code, r := range responses {
				if r, ok := r.(map[string]any); ok && r["description"] == nil && r["$ref"] == nil {
					n, _ := strconv.Atoi(code)
					r["description"] = http.StatusText(n)
				}
			}
		}
	}
	return out, nil
}

// mergePatch applies a JSON Merge Patch to doc: null removes a member,
// an object merges into an object, anything else replaces.
func mergePatch(doc, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			target, ok := doc[k].(map[string]any)
			if !ok {
				target = map[string]any{}
				doc[k] = target
			}
			mergePatch(target, v)
		default:
			doc[k] = v
		}
	}
}

// changedAfter reports whether changes patch the operation in a version
// after first, up to v.
func changedAfter(changes []any, first, v string) bool {
	for _, ch := range changes {
		ch := ch.(map[string]any)
		if ver, _ := ch["version"].(string); ver > first && ver <= v {
			switch patch := ch["patch"].(type) {
			case []any:
				if len(patch) > 0 {
					return true
				}
			case map[string]any:
				if len(patch) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// deepCopy copies decoded JSON.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// correctDescription fixes where GitHub's description contradicts
// GitHub's documented behaviour; each fix says why.
func correctDescription(doc map[string]any) {
	comps, _ := doc["components"].(map[string]any)
	params, _ := comps["parameters"].(map[string]any)
	// The created filter of workflow run lists takes GitHub's search
	// syntax (">=2026-01-02T03:04:05Z", "a..b"), as the parameter's own
	// documentation says; its schema claims a bare date-time.
	if p, ok := params["created"].(map[string]any); ok {
		if sch, ok := p["schema"].(map[string]any); ok {
			delete(sch, "format")
		}
	}
	// The installation list inlines the installation schema with the
	// account as allOf user and enterprise, an object no account is; the
	// installation component (and GitHub's answers) say anyOf.
	if acct := dig(doc, "paths", "/app/installations", "get", "responses", "200", "content",
		"application/json", "schema", "items", "properties", "account"); acct != nil {
		if all, ok := acct["allOf"]; ok {
			acct["anyOf"] = all
			delete(acct, "allOf")
		}
	}
}

// dig walks nested objects.
func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// applyPatch applies one JSON Patch (RFC 6902) operation of the kinds
// GitHub's breaking changes use: add, replace and remove.
func applyPatch(doc map[string]any, p map[string]any) error {
	op, _ := p["op"].(string)
	ptr, _ := p["path"].(string)
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	parent := doc
	for _, s := range parts[:len(parts)-1] {
		next, ok := parent[s].(map[string]any)
		if !ok {
			return fmt.Errorf("patch %s %s: no %q", op, ptr, s)
		}
		parent = next
	}
	last := parts[len(parts)-1]
	switch op {
	case "remove":
		delete(parent, last)
	case "add", "replace":
		parent[last] = p["value"]
	default:
		return fmt.Errorf("patch %s %s: unsupported operation", op, ptr)
	}
	return nil
}

// pathShape replaces every path parameter, {name} or the ServeMux
// wildcard {name...}, with {}.
func pathShape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// apiVersion answers what GitHub answers for the X-GitHub-Api-Version
// header: the version served, or a 400 for one it does not know.
func apiVersion(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.Header.Get("X-GitHub-Api-Version")
	if v == "" {
		v = apiVersion20221128
	}
	if !slices.Contains(apiVersions, v) {
		writeJSON(w, http.StatusBadRequest, apiError{
			Message:          fmt.Sprintf("API version %s is not supported.", v),
			DocumentationURL: "https://docs.github.com/rest/about-the-rest-api/api-versions",
			Status:           "400",
		})
		return "", false
	}
	w.Header().Set("X-GitHub-Api-Version-Selected", v)
	return v, true
}

// checked wraps the handler of a route with the contract check, when the
// server has one.
func (s *Server) checked(pattern string, next http.HandlerFunc) http.HandlerFunc {
	if s.contract == nil {
		return next
	}
	method, path, _ := strings.Cut(pattern, " ")
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := loadContract()
		if err != nil {
			s.violation("%v", err)
			next(w, r)
			return
		}
		rt, ok := c.byShape[method+" "+pathShape(path)]
		if !ok {
			// Not a GitHub REST operation (OAuth endpoints, say).
			next(w, r)
			return
		}
		item := c.pathItem(r.Header.Get("X-GitHub-Api-Version"), rt)
		in := &openapi3filter.RequestValidationInput{
			Request:    r,
			PathParams: pathParams(rt.path, r.URL.Path),
			Route:      &routers.Route{Spec: c.doc, Path: rt.path, PathItem: item, Method: method, Operation: item.GetOperation(method)},
			Options: &openapi3filter.Options{
				AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
				MultiError:          true,
				SkipSettingDefaults: true,
			},
		}
		op := method + " " + rt.path
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			s.violation("%s: request does not match GitHub's description (%s): %v", op, c.source, err)
		}
		rec := &recorder{w: w, header: http.Header{}, code: http.StatusOK}
		next(rec, r)
		if rec.hijacked {
			return
		}
		if r.Context().Err() != nil {
			// The client is gone: no answer reaches it.
			rec.flush()
			return
		}
		if err := checkResponse(in, rec); err != nil {
			s.violation("%s: answer %d does not match GitHub's description (%s): %v", op, rec.code, c.source, err)
		}
		rec.flush()
	}
}

func (s *Server) violation(format string, args ...any) {
	msg := "githubtest contract: " + fmt.Sprintf(format, args...)
	s.contract.Helper()
	s.contract.Errorf("%s", msg)
}

// checkResponse validates an answer against the operation; an error
// status the operation does not document must still have GitHub's error
// shape.
func checkResponse(in *openapi3filter.RequestValidationInput, rec *recorder) error {
	opts := &openapi3filter.Options{MultiError: true, IncludeResponseStatus: rec.code < 400}
	if rec.code >= 400 && in.Route.Operation.Responses.Status(rec.code) == nil {
		return checkErrorShape(in.Route.Spec, rec)
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.code,
		Header:                 rec.header,
		Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options:                opts,
	})
}

// checkErrorShape checks an undocumented error answer against GitHub's
// basic-error (or, for 422, validation-error) schema.
func checkErrorShape(doc *openapi3.T, rec *recorder) error {
	name := "basic-error"
	if rec.code == http.StatusUnprocessableEntity {
		name = "validation-error"
	}
	ref := doc.Components.Schemas[name]
	if ref == nil {
		return fmt.Errorf("the description has no %s schema", name)
	}
	var v any
	if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
		return fmt.Errorf("error body is not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return err
	}
	if m, ok := v.(map[string]any); !ok || m["message"] == nil || m["documentation_url"] == nil {
		return errors.New("error body lacks message or documentation_url")
	}
	return nil
}

// pathParams pairs the description's path parameters with the request
// path's segments; the last parameter takes the rest of the path (a ref
// such as heads/feature/x).
func pathParams(specPath, reqPath string) map[string]string {
	spec := strings.Split(strings.Trim(specPath, "/"), "/")
	req := strings.Split(strings.Trim(reqPath, "/"), "/")
	out := map[string]string{}
	for i, s := range spec {
		if i >= len(req) {
			break
		}
		if name, ok := strings.CutPrefix(s, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			if i == len(spec)-1 {
				out[name] = strings.Join(req[i:], "/")
			} else {
				out[name] = req[i]
			}
		}
	}
	return out
}

// recorder holds an answer until it has been checked.
type recorder struct {
	w        http.ResponseWriter
	header   http.Header
	code     int
	wrote    bool
	hijacked bool
	body     bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// Hijack passes through, for faults that drop the connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("githubtest: connection cannot be hijacked")
	}
	r.hijacked = true
	return hj.Hijack()
}

func (r *recorder) flush() {
	for k, v := range r.header {
		r.w.Header()[k] = v
	}
	r.w.WriteHeader(r.code)
	_, _ = r.w.Write(r.body.Bytes())
}
