package template

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Limits bound what one Render call may cost. Zero fields take defaults.
type Limits struct {
	// MaxOutput bounds the bytes all templates of one config produce
	// together (default 256 KiB).
	MaxOutput int
	// MaxTemplate bounds the size of one template text (default 64 KiB).
	MaxTemplate int
	// Timeout bounds one Render call (default 250 ms); a context deadline
	// that comes sooner wins.
	Timeout time.Duration
	// MaxIterations bounds the iterations of all range loops of one
	// Render call together (default 10,000).
	MaxIterations int
}

// Default limits.
const (
	DefaultMaxOutput     = 256 << 10
	DefaultMaxTemplate   = 64 << 10
	DefaultTimeout       = 250 * time.Millisecond
	DefaultMaxIterations = 10_000
	DefaultCacheSize     = 4096
)

func (l Limits) withDefaults() Limits {
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.MaxTemplate <= 0 {
		l.MaxTemplate = DefaultMaxTemplate
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxIterations <= 0 {
		l.MaxIterations = DefaultMaxIterations
	}
	return l
}

// Renderer renders agent configs. It caches parsed templates by their
// text, so a config rendered for many jobs is parsed once. It is safe for
// concurrent use; share one.
type Renderer struct {
	limits   Limits
	cache    *lru.Cache[string, *tmpl]
	compiled *lru.Cache[string, *node] // agent configs by their JSON text
}

// Option configures a Renderer.
type Option func(*rendererConfig)

type rendererConfig struct {
	limits    Limits
	cacheSize int
}

// WithLimits sets the rendering limits.
func WithLimits(l Limits) Option { return func(c *rendererConfig) { c.limits = l } }

// WithCacheSize sets how many parsed templates are kept (default 4096).
func WithCacheSize(n int) Option { return func(c *rendererConfig) { c.cacheSize = n } }

// NewRenderer returns a Renderer.
func NewRenderer(opts ...Option) *Renderer {
	cfg := rendererConfig{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.cacheSize <= 0 {
		cfg.cacheSize = DefaultCacheSize
	}
	cache, err := lru.New[string, *tmpl](cfg.cacheSize)
	if err != nil {
		panic("template: " + err.Error()) // only for a non-positive size, excluded above
	}
	compiled, err := lru.New[string, *node](cfg.cacheSize)
	if err != nil {
		panic("template: " + err.Error())
	}
	return &Renderer{limits: cfg.limits.withDefaults(), cache: cache, compiled: compiled}
}

// stateKey holds the execution state in the root data map. It is not a
// valid identifier, so templates cannot name it with a field access.
const stateKey = "\x00state"

// execState is the per-Render budget, reached from guards through $.
type execState struct {
	deadline   time.Time
	iterations int
	maxIter    int
	written    int
	maxOut     int
}

func (st *execState) check() error {
	if time.Now().After(st.deadline) {
		return ErrTimeout
	}
	return nil
}

// run holds one Render call's state.
type run struct {
	r    *Renderer
	data map[string]any
	st   *execState
	buf  bytes.Buffer
}

func (r *Renderer) newRun(ctx context.Context, c Context) *run {
	deadline := time.Now().Add(r.limits.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st := &execState{deadline: deadline, maxIter: r.limits.MaxIterations, maxOut: r.limits.MaxOutput}
	data := c.data()
	data[stateKey] = st
	return &run{r: r, data: data, st: st}
}

// RenderString renders one template text against c. field names it in
// errors.
func (r *Renderer) RenderString(ctx context.Context, field, text string, c Context) (string, error) {
	return r.newRun(ctx, c).renderString(field, text)
}

// RenderValue renders every string inside v (a value decoded from JSON:
// maps, slices, strings, numbers, booleans, nil) that holds a template,
// and returns a new value; v is not modified.
func (r *Renderer) RenderValue(ctx context.Context, v any, c Context) (any, error) {
	n, err := r.compile("", v, false)
	if err != nil {
		return nil, err
	}
	return r.newRun(ctx, c).exec(n)
}

// RenderMap renders an agent config: every string value (and object key)
// that holds a template ("{{ ... }}") is rendered, recursively. If the config has a
// "template" key, its string is rendered as a whole document that must
// produce a JSON object; that object's fields are merged with the other
// fields of the config (a field set in both is an error). A top-level
// "token" is copied as it is: it may be a "{{ secrets.NAME }}" reference.
func (r *Renderer) RenderMap(ctx context.Context, cfg map[string]any, c Context) (map[string]any, error) {
	n, err := r.compile("", cfg, true)
	if err != nil {
		return nil, err
	}
	return r.newRun(ctx, c).document(n)
}

// node is a compiled config value: a literal, a template, an object or a
// list. Compiled configs are cached by their JSON text.
type node struct {
	lit   any
	tmpl  *tmpl
	field string
	keys  []string // object
	ktmpl []*tmpl  // object keys that are templates, else nil entries
	elems []*node  // object values, or list elements
	list  bool
}

func (r *Renderer) compile(path string, v any, top bool) (*node, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return &node{lit: x}, nil
		}
		t, err := r.parse(path, x)
		if err != nil {
			return nil, err
		}
		return &node{tmpl: t, field: path}, nil
	case map[string]any:
		n := &node{keys: make([]string, 0, len(x)), elems: make([]*node, 0, len(x))}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			var e *node
			switch {
			case top && k == "token":
				e = &node{lit: x[k]}
			case top && k == "template":
				s, ok := x[k].(string)
				if !ok {
					return nil, &Error{Field: "template", Kind: ErrInvalidConfig, Detail: "must be a string holding a template that renders to a JSON object"}
				}
				t, err := r.parse("template", s)
				if err != nil {
					return nil, err
				}
				e = &node{tmpl: t, field: "template", lit: s}
			default:
				var err error
				if e, err = r.compile(p, x[k], false); err != nil {
					return nil, err
				}
			}
			var kt *tmpl
			if strings.Contains(k, "{{") {
				var err error
				if kt, err = r.parse(p, k); err != nil {
					return nil, err
				}
			}
			n.keys = append(n.keys, k)
			n.ktmpl = append(n.ktmpl, kt)
			n.elems = append(n.elems, e)
		}
		return n, nil
	case []any:
		n := &node{list: true, elems: make([]*node, len(x))}
		for i, e := range x {
			var err error
			if n.elems[i], err = r.compile(fmt.Sprintf("%s[%d]", path, i), e, false); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	return &node{lit: v}, nil
}

func (run *run) exec(n *node) (any, error) {
	switch {
	case n.tmpl != nil:
		return run.execTemplate(n.field, n.tmpl)
	case n.list:
		out := make([]any, len(n.elems))
		for i, e := range n.elems {
			var err error
			if out[i], err = run.exec(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case n.keys != nil:
		out := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, err := run.exec(n.elems[i])
			if err != nil {
				return nil, err
			}
			if kt := n.ktmpl[i]; kt != nil {
				if k, err = run.execTemplate(n.keys[i], kt); err != nil {
					return nil, err
				}
			}
			if _, dup := out[k]; dup {
				return nil, &Error{Field: n.keys[i], Kind: ErrInvalidConfig, Detail: fmt.Sprintf("two keys render to %q", k)}
			}
			out[k] = v
		}
		return out, nil
	}
	return n.lit, nil
}

// document executes a compiled top-level config, expanding its
// "template" document.
func (run *run) document(n *node) (map[string]any, error) {
	out := make(map[string]any, len(n.keys))
	var doc *node
	for i, k := range n.keys {
		if k == "template" && n.elems[i].tmpl != nil {
			doc = n.elems[i]
			continue
		}
		v, err := run.exec(n.elems[i])
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	if doc == nil {
		return out, nil
	}
	rendered, err := run.execTemplate("template", doc.tmpl)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := decodeJSONObject("template", rendered, &fields); err != nil {
		return nil, err
	}
	for k, v := range fields {
		if _, dup := out[k]; dup {
			return nil, &Error{Field: k, Kind: ErrInvalidConfig, Detail: "set both by the template document and beside it; set it in one place"}
		}
		out[k] = v
	}
	return out, nil
}

func (run *run) renderString(field, text string) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := run.r.parse(field, text)
	if err != nil {
		return "", err
	}
	return run.execTemplate(field, t)
}

func (run *run) execTemplate(field string, t *tmpl) (string, error) {
	if err := run.st.check(); err != nil {
		return "", &Error{Field: field, Kind: err}
	}
	if s, ok := run.fast(t); ok {
		return s, nil
	}
	run.buf.Reset()
	w := limitWriter{buf: &run.buf, st: run.st}
	if err := t.t.Execute(w, run.data); err != nil {
		return "", classify(field, err, run.data)
	}
	return run.buf.String(), nil
}

// tmpl is a parsed template. Most config values are plain field
// references ("{{ .version.tag }}", "v{{ .version.tag }}-{{ .environment.name }}");
// for those, parts lets rendering skip text/template's reflection when
// every referenced value is a string. Anything else, including every
// error, goes through text/template, so results and messages are
// text/template's own.
type tmpl struct {
	t     *texttemplate.Template
	parts []part // nil unless the template is only text and field chains
}

type part struct {
	text  string
	field []string // a field chain, or nil for text
}

// parse returns the cached template for text, parsing it on a miss.
func (r *Renderer) parse(field, text string) (*tmpl, error) {
	if t, ok := r.cache.Get(text); ok {
		return t, nil
	}
	if len(text) > r.limits.MaxTemplate {
		return nil, &Error{Field: field, Kind: ErrInvalidConfig, Detail: fmt.Sprintf("template is %d bytes; the limit is %d", len(text), r.limits.MaxTemplate)}
	}
	t, err := texttemplate.New("t").Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, &Error{Field: field, Kind: ErrSyntax, Detail: cleanMessage(err.Error())}
	}
	if len(t.Templates()) > 1 {
		return nil, &Error{Field: field, Kind: ErrNotAllowed, Detail: "define and block are not supported; keep each value one template"}
	}
	if err := guardTree(t.Tree.Root); err != nil {
		return nil, &Error{Field: field, Kind: ErrNotAllowed, Detail: err.Error()}
	}
	c := &tmpl{t: t, parts: simpleParts(t.Tree.Root)}
	r.cache.Add(text, c)
	return c, nil
}

// simpleParts returns the parts of a template made only of text and
// actions printing a field chain, or nil.
func simpleParts(root *parse.ListNode) []part {
	var parts []part
	for _, n := range root.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			parts = append(parts, part{text: string(x.Text)})
		case *parse.ActionNode:
			if len(x.Pipe.Decl) != 0 || len(x.Pipe.Cmds) != 1 || len(x.Pipe.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := x.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok {
				return nil
			}
			parts = append(parts, part{field: f.Ident})
		default:
			return nil
		}
	}
	if parts == nil {
		return nil
	}
	return parts
}

// fast renders a simple template when every field it names is a string
// present in the data; ok is false otherwise.
func (run *run) fast(t *tmpl) (string, bool) {
	if t.parts == nil {
		return "", false
	}
	if len(t.parts) == 1 && t.parts[0].field != nil {
		v, ok := lookup(run.data, t.parts[0].field)
		if !ok || run.st.written+len(v) > run.st.maxOut {
			return "", false
		}
		run.st.written += len(v)
		return v, true
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == nil {
			b.WriteString(p.text)
			continue
		}
		v, ok := lookup(run.data, p.field)
		if !ok {
			return "", false
		}
		b.WriteString(v)
	}
	if run.st.written+b.Len() > run.st.maxOut {
		return "", false // let text/template report it
	}
	run.st.written += b.Len()
	return b.String(), true
}

func lookup(m map[string]any, chain []string) (string, bool) {
	for i, k := range chain {
		v, ok := m[k]
		if !ok {
			return "", false
		}
		if i == len(chain)-1 {
			s, ok := v.(string)
			return s, ok
		}
		if m, ok = v.(map[string]any); !ok {
			return "", false
		}
	}
	return "", false
}

// guardTree rejects {{template}} calls and appends the range guard to the
// pipeline of every range, so that loops are counted against the budget.
func guardTree(n parse.Node) error {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := guardTree(c); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("{{template %q}} is not supported", x.Name)
	case *parse.IfNode:
		return errors.Join(guardTree(x.List), guardTree(x.ElseList))
	case *parse.WithNode:
		return errors.Join(guardTree(x.List), guardTree(x.ElseList))
	case *parse.RangeNode:
		x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{
			NodeType: parse.NodeCommand,
			Pos:      x.Pipe.Pos,
			Args: []parse.Node{
				parse.NewIdentifier(guardFunc).SetPos(x.Pipe.Pos),
				&parse.VariableNode{NodeType: parse.NodeVariable, Pos: x.Pipe.Pos, Ident: []string{"$"}},
			},
		})
		return errors.Join(guardTree(x.List), guardTree(x.ElseList))
	}
	return nil
}

const guardFunc = "__ghbridge_range_guard"

// rangeGuard is appended to every range pipeline: it counts the
// iterations about to run against the budget and checks the deadline.
func rangeGuard(root, v any) (any, error) {
	m, _ := root.(map[string]any)
	st, _ := m[stateKey].(*execState)
	if st == nil {
		return nil, ErrNotAllowed
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	n := 0
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return v, nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Invalid:
	case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
		n = rv.Len()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = int(min(max(rv.Int(), 0), int64(st.maxIter)+1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n = int(min(rv.Uint(), uint64(st.maxIter)+1))
	default:
		return nil, fmt.Errorf("%w: range over %s", ErrNotAllowed, rv.Kind())
	}
	st.iterations += n
	if st.iterations > st.maxIter {
		return nil, ErrTooManyIterations
	}
	return v, nil
}

// limitWriter counts output against the budget and checks the deadline.
type limitWriter struct {
	buf *bytes.Buffer
	st  *execState
}

func (w limitWriter) Write(p []byte) (int, error) {
	if w.st.written+len(p) > w.st.maxOut {
		return 0, ErrOutputTooLarge
	}
	// Reading the clock costs more than a small write: check it once
	// per 4 KiB written.
	if (w.st.written+len(p))>>12 != w.st.written>>12 {
		if err := w.st.check(); err != nil {
			return 0, err
		}
	}
	w.st.written += len(p)
	return w.buf.Write(p)
}

var (
	atExpr     = regexp.MustCompile(`at <([^>]*)>`)
	noEntryKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)
	noField    = regexp.MustCompile(`can't evaluate field (\S+)`)
	tmplPrefix = regexp.MustCompile(`^template: t:(\d+):(\d+:)? ?(executing "t" at <[^>]*>: )?`)
)

func cleanMessage(msg string) string {
	if m := tmplPrefix.FindStringSubmatch(msg); m != nil {
		pos := "line " + m[1]
		if m[2] != "" {
			pos += ", column " + strings.TrimSuffix(m[2], ":")
		}
		return pos + ": " + msg[len(m[0]):]
	}
	return msg
}

func classify(field string, err error, data map[string]any) error {
	for _, kind := range []error{ErrOutputTooLarge, ErrTimeout, ErrTooManyIterations, ErrNotAllowed} {
		if errors.Is(err, kind) {
			return &Error{Field: field, Kind: kind}
		}
	}
	msg := err.Error()
	if noEntryKey.MatchString(msg) || noField.MatchString(msg) || strings.Contains(msg, "nil pointer evaluating") {
		key := ""
		if m := atExpr.FindStringSubmatch(msg); m != nil {
			key = m[1]
		} else if m := noEntryKey.FindStringSubmatch(msg); m != nil {
			key = m[1]
		}
		return &Error{Field: field, Key: key, Kind: ErrMissingKey, Detail: missingKeyHint(key, data)}
	}
	return &Error{Field: field, Kind: ErrRender, Detail: cleanMessage(msg)}
}

// missingKeyHint lists the names available next to a missing one.
func missingKeyHint(key string, data map[string]any) string {
	parts := strings.Split(strings.TrimPrefix(key, "."), ".")
	if len(parts) == 0 || !strings.HasPrefix(key, ".") {
		return "the job context has no such value; use get or hasKey for optional values"
	}
	cur := data
	for i, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is not an object", "."+strings.Join(parts[:i+1], "."))
		}
		cur = next
	}
	var names []string
	for k := range cur {
		if k != stateKey {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	where := "the job context"
	if len(parts) > 1 {
		where = "." + strings.Join(parts[:len(parts)-1], ".")
	}
	if len(names) == 0 {
		return where + " is empty; use get or hasKey for optional values"
	}
	return fmt.Sprintf("%s has %s; use get or hasKey for optional values", where, strings.Join(names, ", "))
}

// decodeJSONObject decodes a rendered document, saying where it breaks.
func decodeJSONObject(field, text string, v *map[string]any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("extra data after the JSON object")
	}
	if err == nil && *v == nil {
		err = errors.New("it rendered to null, not a JSON object")
	}
	if err == nil {
		*v = normalizeNumbers(*v).(map[string]any)
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	detail := err.Error()
	switch {
	case errors.As(err, &se):
		detail = fmt.Sprintf("%s (%s)", se.Error(), position(text, int(se.Offset)-1)) // Offset is just past the bad byte
	case errors.As(err, &te):
		detail = fmt.Sprintf("it rendered to a JSON %s, not an object", te.Value)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		detail = "unexpected end of input (" + position(text, len(text)) + ")"
	}
	return &Error{Field: field, Kind: ErrInvalidJSON, Detail: detail}
}

// position describes a byte offset as line and column with a snippet.
func position(text string, off int) string {
	off = min(max(off, 0), len(text))
	line := strings.Count(text[:off], "\n") + 1
	start := strings.LastIndex(text[:off], "\n") + 1
	end := strings.IndexByte(text[off:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += off
	}
	snippet := text[start:end]
	if len(snippet) > 80 {
		lo := max(0, off-start-40)
		snippet = snippet[lo:min(len(snippet), lo+80)]
	}
	return fmt.Sprintf("line %d, column %d: %q", line, off-start+1, strings.TrimSpace(snippet))
}

// normalizeNumbers turns json.Number into int64 where exact, float64
// otherwise, so that rendered documents look like json.Unmarshal output
// with integers kept whole.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
