package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// Limits bound what one Render call may cost. Zero fields take defaults.
// Hosts set them (WithLimits) to allow larger or more complex configs, or
// fewer.
//
// Rendering is bounded deterministically: the output budget and the step
// limit decide "too big" and "too long", so a config renders or fails the
// same way on a busy machine as on an idle one. Timeout is only a last
// resort.
type Limits struct {
	// MaxOutput bounds the bytes all templates of one config produce
	// together (default 256 KiB). No value a function builds may be
	// larger than what is left of it either.
	MaxOutput int
	// MaxTemplate bounds the size of one template text (default 64 KiB).
	MaxTemplate int
	// MaxTemplateTotal bounds the template text of one config, all
	// templates together, each counting 128 bytes more than its text
	// (default 128 KiB): parsing allocates about 80 bytes per byte of
	// template.
	MaxTemplateTotal int
	// MaxSteps bounds the execution steps of one Render call (default
	// 100,000): each template, each if, with and range body each time it
	// runs, each action, function call and argument, and every 64 bytes a
	// function reads or allocates. ErrTooComplex reports it.
	MaxSteps int
	// MaxIterations bounds the iterations of all range loops of one
	// Render call together (default 10,000).
	MaxIterations int
	// Timeout bounds one Render call in wall-clock time (default 5 s), a
	// last resort far above what the step limit allows; a context that
	// ends sooner wins.
	Timeout time.Duration
}

// The defaults of Limits and WithCacheSize, for hosts that set theirs
// relative to them.
const (
	DefaultMaxOutput        = 256 << 10
	DefaultMaxTemplate      = 64 << 10
	DefaultMaxTemplateTotal = 128 << 10
	DefaultMaxSteps         = 100_000
	DefaultTimeout          = 5 * time.Second
	DefaultMaxIterations    = 10_000
	DefaultCacheSize        = 4096
)

func (l Limits) withDefaults() Limits {
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.MaxTemplate <= 0 {
		l.MaxTemplate = DefaultMaxTemplate
	}
	if l.MaxTemplateTotal <= 0 {
		l.MaxTemplateTotal = max(DefaultMaxTemplateTotal, l.MaxTemplate)
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = DefaultMaxSteps
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
// concurrent use; share one. Hosts make one and hand it to the
// Dispatcher (dispatch.WithRenderer), and use it to check configs as they
// are submitted.
type Renderer struct {
	limits    Limits
	cacheSize int // of each cache, for NewRenderer
	cache     *cache[*tmpl]
	compiled  *cache[*node] // agent configs by their JSON text
	// base holds the function set; every parsed tree is executed through
	// a template sharing it, so a parse does not copy the functions.
	base *texttemplate.Template
}

// Option configures a Renderer (NewRenderer).
type Option func(*Renderer)

// WithLimits sets the rendering limits; zero fields keep their defaults.
func WithLimits(l Limits) Option { return func(r *Renderer) { r.limits = l } }

// WithCacheSize sets how many parsed templates, and how many compiled
// configs, are kept (default DefaultCacheSize each). Both caches are also
// bounded by an estimate of the memory they hold (128 MiB of templates,
// 256 MiB of configs, worst case). Hosts that render many distinct
// configs raise it.
func WithCacheSize(n int) Option { return func(r *Renderer) { r.cacheSize = n } }

// NewRenderer returns a Renderer with the default limits unless opts say
// otherwise.
func NewRenderer(opts ...Option) *Renderer {
	r := &Renderer{}
	for _, o := range opts {
		o(r)
	}
	r.limits = r.limits.withDefaults()
	if r.cacheSize <= 0 {
		r.cacheSize = DefaultCacheSize
	}
	r.cache = newCache[*tmpl](r.cacheSize, maxTemplateCache)
	r.compiled = newCache[*node](r.cacheSize, maxConfigCache)
	r.base = texttemplate.New("t").Option("missingkey=error").Funcs(funcs)
	return r
}

// run holds one Render call's state.
type run struct {
	r    *Renderer
	data map[string]any
	st   *execState
	buf  strings.Builder
	// owned is set when the compiled config belongs to this call alone,
	// so its literal values need not be copied.
	owned bool
}

func (r *Renderer) newRun(ctx context.Context, c Context) *run {
	deadline := time.Now().Add(r.limits.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st := &execState{
		ctx: ctx, deadline: deadline, clock: clockEvery,
		maxSteps: r.limits.MaxSteps, maxIter: r.limits.MaxIterations, maxOut: r.limits.MaxOutput,
	}
	data := c.data()
	data[stateKey] = st
	return &run{r: r, data: data, st: st}
}

// node is a compiled config value: a literal, a template, an object or a
// list. Compiled configs are cached by their JSON text. Only values that
// hold templates get a node of their own: a subtree without templates is
// one literal, copied when rendered, so compiling a large config of
// plain values allocates nothing per value.
type node struct {
	lit   any
	tmpl  *tmpl
	keys  []string
	ktmpl []*tmpl // object keys that are templates, else nil entries
	elems []*node // object values, or list elements
	list  bool
	// parent, key and index place the node in the config, for error
	// messages; the path is spelt out only when an error needs it.
	parent *node
	key    string
	index  int
}

// path is the node's field path: "inputs.version", "steps[2].name".
func (n *node) path() string {
	var parts []*node
	for p := n; p != nil && p.parent != nil; p = p.parent {
		parts = append(parts, p)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		switch {
		case p.parent.list:
			fmt.Fprintf(&b, "[%d]", p.index)
		case b.Len() > 0:
			b.WriteString("." + p.key)
		default:
			b.WriteString(p.key)
		}
	}
	return b.String()
}

// templateOverhead is what each template counts against
// Limits.MaxTemplateTotal besides its text: parsing even "{{1}}"
// allocates about a kilobyte.
const templateOverhead = 128

// compiler holds the state of compiling one config.
type compiler struct {
	r        *Renderer
	template int // bytes of template text so far
}

// compileRoot compiles an agent config (its top level has the "template"
// and "token" keys).
func (r *Renderer) compileRoot(v any) (*node, error) {
	c := &compiler{r: r}
	n, err := c.compile(nil, "", 0, v, true)
	if err != nil {
		return nil, err
	}
	if n == nil {
		n = &node{lit: v}
	}
	return n, nil
}

// parse parses a template of the config, counting it against the limit
// on template text per config.
func (c *compiler) parse(parent *node, key string, index int, text string) (*tmpl, error) {
	at := &node{parent: parent, key: key, index: index}
	c.template += len(text) + templateOverhead
	if c.template > c.r.limits.MaxTemplateTotal {
		return nil, &FieldError{Field: at.path(), Kind: ErrInvalidConfig, Detail: fmt.Sprintf("the config holds more than %d bytes of templates; the limit is %d", c.template, c.r.limits.MaxTemplateTotal)}
	}
	return c.r.parse(at.path, text)
}

// compile compiles v, found at key or index in parent. It returns nil for
// a value without templates. top is set for the config's top level.
func (c *compiler) compile(parent *node, key string, index int, v any, top bool) (*node, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return nil, nil
		}
		t, err := c.parse(parent, key, index, x)
		if err != nil {
			return nil, err
		}
		return &node{tmpl: t, parent: parent, key: key, index: index}, nil
	case map[string]any:
		n := &node{parent: parent, key: key, index: index}
		keys := slices.Sorted(maps.Keys(x))
		var compiled bool
		for i, k := range keys {
			var e *node
			switch {
			case top && k == "token":
			case top && k == "template":
				s, ok := x[k].(string)
				if !ok {
					return nil, &FieldError{Field: "template", Kind: ErrInvalidConfig, Detail: "must be a string holding a template that renders to a JSON object"}
				}
				t, err := c.parse(n, "template", 0, s)
				if err != nil {
					return nil, err
				}
				e = &node{tmpl: t, parent: n, key: k, lit: s}
			default:
				var err error
				if e, err = c.compile(n, k, 0, x[k], false); err != nil {
					return nil, err
				}
			}
			var kt *tmpl
			if strings.Contains(k, "{{") {
				var err error
				if kt, err = c.parse(n, k, 0, k); err != nil {
					return nil, err
				}
			}
			if (e != nil || kt != nil) && !compiled {
				// The first value with a template: from here on the
				// object is compiled key by key.
				compiled = true
				n.keys, n.ktmpl, n.elems = make([]string, 0, len(keys)), make([]*tmpl, 0, len(keys)), make([]*node, 0, len(keys))
				for _, pk := range keys[:i] {
					n.keys, n.ktmpl, n.elems = append(n.keys, pk), append(n.ktmpl, nil), append(n.elems, &node{lit: x[pk], parent: n, key: pk})
				}
			}
			if compiled {
				if e == nil {
					e = &node{lit: x[k], parent: n, key: k}
				}
				n.keys, n.ktmpl, n.elems = append(n.keys, k), append(n.ktmpl, kt), append(n.elems, e)
			}
		}
		if !compiled && !top {
			return nil, nil
		}
		if !compiled { // the top level always has keys
			n.keys, n.ktmpl, n.elems = keys, make([]*tmpl, len(keys)), make([]*node, len(keys))
			for i, k := range keys {
				n.elems[i] = &node{lit: x[k], parent: n, key: k}
			}
		}
		return n, nil
	case []any:
		n := &node{list: true, parent: parent, key: key, index: index}
		for i, e := range x {
			en, err := c.compile(n, "", i, e, false)
			if err != nil {
				return nil, err
			}
			if en != nil && n.elems == nil {
				n.elems = make([]*node, len(x))
				for j := range i {
					n.elems[j] = &node{lit: x[j], parent: n, index: j}
				}
			}
			if n.elems != nil {
				if en == nil {
					en = &node{lit: e, parent: n, index: i}
				}
				n.elems[i] = en
			}
		}
		if n.elems == nil {
			return nil, nil
		}
		return n, nil
	}
	return nil, nil
}

func (run *run) exec(n *node) (any, error) {
	switch {
	case n.tmpl != nil:
		return run.execTemplate(n, "", n.tmpl)
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
				if k, err = run.execTemplate(n.elems[i], "", kt); err != nil {
					return nil, err
				}
			}
			if _, dup := out[k]; dup {
				return nil, &FieldError{Field: n.elems[i].path(), Kind: ErrInvalidConfig, Detail: fmt.Sprintf("two keys render to %q", k)}
			}
			out[k] = v
		}
		return out, nil
	}
	if run.owned {
		return n.lit, nil
	}
	return cloneJSON(n.lit), nil
}

// cloneJSON copies the objects and lists of a literal, so that a caller
// may modify what Render returns without touching the cached config.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = cloneJSON(e)
		}
		return l
	}
	return v
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
	rendered, err := run.execTemplate(nil, "template", doc.tmpl)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := decodeJSONObject("template", rendered, &fields); err != nil {
		return nil, err
	}
	for k, v := range fields {
		if _, dup := out[k]; dup {
			return nil, &FieldError{Field: k, Kind: ErrInvalidConfig, Detail: "set both by the template document and beside it; set it in one place"}
		}
		out[k] = v
	}
	return out, nil
}

// execTemplate runs t. The field it renders is n's path, or field when n
// is nil.
func (run *run) execTemplate(n *node, field string, t *tmpl) (string, error) {
	fieldName := func() string {
		if n != nil {
			return n.path()
		}
		return field
	}
	if err := run.st.check(); err != nil {
		return "", classify(fieldName(), err, run.data)
	}
	if err := run.st.step(t.weight); err != nil {
		return "", classify(fieldName(), err, run.data)
	}
	if s, ok := run.fast(t); ok {
		return s, nil
	}
	run.buf.Reset()
	w := limitWriter{buf: &run.buf, st: run.st}
	if err := t.t.Execute(w, run.data); err != nil {
		return "", classify(fieldName(), err, run.data)
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
	t      *texttemplate.Template
	parts  []part // nil unless the template is only text and field chains
	weight int    // steps of one execution, loops and branches aside
}

type part struct {
	text  string
	field []string // a field chain, or nil for text
}

// parse returns the cached template for text, parsing it on a miss.
// field names the template in errors; it is spelt out only then.
func (r *Renderer) parse(name func() string, text string) (*tmpl, error) {
	if t, ok := r.cache.get(text); ok {
		return t, nil
	}
	if len(text) > r.limits.MaxTemplate {
		return nil, &FieldError{Field: name(), Kind: ErrInvalidConfig, Detail: fmt.Sprintf("template is %d bytes; the limit is %d", len(text), r.limits.MaxTemplate)}
	}
	// parse.Parse rather than Template.Parse: define and block must not
	// add templates to the set shared through r.base.
	trees, err := parse.Parse("t", text, "", "", map[string]any(funcs), builtinNames)
	if err != nil {
		return nil, &FieldError{Field: name(), Kind: ErrSyntax, Detail: cleanMessage(err.Error()), Err: err}
	}
	tree := trees["t"]
	if len(trees) > 1 || tree == nil {
		return nil, &FieldError{Field: name(), Kind: ErrNotAllowed, Detail: "define and block are not supported; keep each value one template"}
	}
	parts := simpleParts(tree.Root)
	weight, err := instrument(tree.Root)
	if err != nil {
		return nil, &FieldError{Field: name(), Kind: ErrNotAllowed, Detail: err.Error(), Err: err}
	}
	t, err := r.base.New("t").AddParseTree("t", tree)
	if err != nil {
		return nil, &FieldError{Field: name(), Kind: ErrSyntax, Detail: cleanMessage(err.Error()), Err: err}
	}
	c := &tmpl{t: t, parts: parts, weight: weight}
	r.cache.add(text, c, int64(len(text))*parsedBytesPerByte+entryOverhead)
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

var (
	atExpr     = regexp.MustCompile(`at <([^>]*)>`)
	noEntryKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)
	noField    = regexp.MustCompile(`can't evaluate field (\S+)`)
	tmplPrefix = regexp.MustCompile(`^template: t:(\d+):(\d+:)? ?(executing "t" at <[^>]*>: )?`)
)

// argCount matches text/template's message for a call with the wrong
// number of arguments.
var argCount = regexp.MustCompile(`wrong number of args for (\w+): want (at least )?(\d+) got (\d+)`)

func cleanMessage(msg string) string {
	// Calls of functions taking the budget have a hidden argument: count
	// it out of messages.
	msg = argCount.ReplaceAllStringFunc(msg, func(m string) string {
		sub := argCount.FindStringSubmatch(m)
		if !stateFuncs[sub[1]] {
			return m
		}
		want, _ := strconv.Atoi(sub[3])
		got, _ := strconv.Atoi(sub[4])
		return fmt.Sprintf("wrong number of args for %s: want %s%d got %d", sub[1], sub[2], want-1, got-1)
	})
	msg = strings.ReplaceAll(msg, " $."+stateKey, "")
	if m := tmplPrefix.FindStringSubmatch(msg); m != nil {
		pos := "line " + m[1]
		if m[2] != "" {
			pos += ", column " + strings.TrimSuffix(m[2], ":")
		}
		return pos + ": " + msg[len(m[0]):]
	}
	return msg
}

// classify turns text/template's execution error into an *Error.
// text/template reports a missing key only in its message, so that
// message is matched here; everything else is matched by errors.Is.
func classify(field string, err error, data map[string]any) error {
	var be *budgetError
	if errors.As(err, &be) {
		return &FieldError{Field: field, Kind: be.kind, Detail: be.detail, Err: err}
	}
	for _, kind := range []error{ErrOutputTooLarge, ErrTimeout, ErrTooComplex, ErrTooManyIterations, ErrNotAllowed} {
		if errors.Is(err, kind) {
			return &FieldError{Field: field, Kind: kind, Err: err}
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
		return &FieldError{Field: field, Key: key, Kind: ErrMissingKey, Detail: missingKeyHint(key, data), Err: err}
	}
	return &FieldError{Field: field, Kind: ErrRender, Detail: cleanMessage(msg), Err: err}
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
	if len(names) > 20 {
		names = append(names[:20], fmt.Sprintf("and %d more", len(names)-20))
	}
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
	return &FieldError{Field: field, Kind: ErrInvalidJSON, Detail: detail}
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
