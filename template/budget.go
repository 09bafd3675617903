package template

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"text/template/parse"
	"time"
)

// stateKey holds the execution state in the root data map. It is not a
// valid identifier, so templates cannot name it with a field access.
const stateKey = "\x00state"

// Hidden functions the parser inserts into every template (see
// instrument). Templates may not call them themselves.
const (
	internalPrefix = "__ghbridge_"
	stepFunc       = internalPrefix + "step"
	guardFunc      = internalPrefix + "range_guard"
	printFunc      = internalPrefix + "print_guard"
	stepVar        = "$\x00step"
)

// bytesPerStep converts the bytes a function reads or allocates into
// steps, so that one budget bounds both node evaluations and the work
// done inside functions.
const bytesPerStep = 64

// clockEvery is how many steps pass between two looks at the clock and
// the context: the wall-clock limit is a last resort, the step limit is
// what normally stops a template.
const clockEvery = 4096

// execState is the budget of one Render call. Templates reach it through
// a hidden argument the parser inserts: $.<stateKey>.
type execState struct {
	ctx        context.Context
	deadline   time.Time
	steps      int
	maxSteps   int
	iterations int
	maxIter    int
	written    int
	maxOut     int
	clock      int // steps left before the next clock check
}

// budgetError is a budget failure with a detail for people; it matches
// its kind with errors.Is.
type budgetError struct {
	kind   error
	detail string
}

func (e *budgetError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *budgetError) Unwrap() error { return e.kind }

func overBudget(kind error, format string, args ...any) error {
	return &budgetError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// check looks at the context and the wall-clock deadline.
func (st *execState) check() error {
	if err := st.ctx.Err(); err != nil {
		return overBudget(ErrTimeout, "the caller's context ended: %v", err)
	}
	if time.Now().After(st.deadline) {
		return overBudget(ErrTimeout, "rendering ran past the wall-clock limit; the step limit should have stopped it first")
	}
	return nil
}

// step charges n execution steps.
func (st *execState) step(n int) error {
	st.steps += n
	if st.steps > st.maxSteps {
		return overBudget(ErrTooComplex, "more than %d steps", st.maxSteps)
	}
	if st.clock -= n; st.clock <= 0 {
		st.clock = clockEvery
		return st.check()
	}
	return nil
}

// work charges a function that reads or allocates n bytes.
func (st *execState) work(n int) error { return st.step(1 + n/bytesPerStep) }

// valueCost is what building a value of n bytes allocates, in units of
// n: a growing buffer, then the string copied out of it.
const valueCost = 4

// value charges a function about to build a value of n bytes. No value
// may be larger than the output still allowed: checking before the
// allocation is what keeps a template from allocating without bound.
func (st *execState) value(fn string, n int) error {
	if left := st.maxOut - st.written; n > left {
		return overBudget(ErrOutputTooLarge, "%s would produce %d bytes; %d of the output limit are left", fn, n, left)
	}
	return st.work(valueCost * n)
}

// stepGuard is the hidden action at the start of every list of nodes: it
// charges the static weight of the list.
func stepGuard(st *execState, n int) (string, error) {
	if n < 1 {
		return "", ErrNotAllowed
	}
	return "", st.step(n)
}

// rangeGuard is appended to every range pipeline: it counts the
// iterations about to run against the budget before text/template sorts
// map keys or starts iterating.
func rangeGuard(st *execState, v any) (any, error) {
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
		return nil, overBudget(ErrTooManyIterations, "more than %d range iterations", st.maxIter)
	}
	if rv.Kind() == reflect.Map {
		// text/template sorts the keys first.
		if err := st.work(n * 32); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// printGuard is appended to every action that prints: fmt formats a
// value whole before the writer sees it, so its size is bounded first.
func printGuard(st *execState, v any) (any, error) {
	if s, ok := v.(string); ok { // the common case
		if left := st.maxOut - st.written; len(s) > left {
			return nil, overBudget(ErrOutputTooLarge, "printing %d bytes; %d of the output limit are left", len(s), left)
		}
		return v, nil
	}
	n, err := fmtSize(st, v)
	if err != nil {
		return nil, err
	}
	if err := st.value("printing a value", n); err != nil {
		return nil, err
	}
	return v, nil
}

// limitWriter counts output against the budget.
type limitWriter struct {
	buf *strings.Builder
	st  *execState
}

func (w limitWriter) Write(p []byte) (int, error) {
	if w.st.written+len(p) > w.st.maxOut {
		return 0, overBudget(ErrOutputTooLarge, "more than %d bytes", w.st.maxOut)
	}
	w.st.written += len(p)
	return w.buf.Write(p)
}

// sizedResults are the functions whose results are strings already
// sized against the output budget, or small values: printing them needs
// no guard.
var sizedResults = map[string]bool{
	"printf": true, "print": true, "println": true, "html": true, "js": true, "urlquery": true,
	"lower": true, "upper": true, "title": true, "replace": true, "join": true, "quote": true, "squote": true,
	"toString": true, "b64enc": true, "b64dec": true, "toJson": true, "sha256sum": true,
	"contains": true, "hasPrefix": true, "hasSuffix": true, "empty": true, "hasKey": true, "atoi": true,
	"len": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "not": true,
}

// boundedResult reports whether a pipeline ends in a call of a function
// of sizedResults.
func boundedResult(p *parse.PipeNode) bool {
	last := p.Cmds[len(p.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && sizedResults[id.Ident]
}

// comparisons are the builtins whose cost grows with their arguments
// (eq on two long strings compares them byte by byte): their arguments
// weigh more.
var comparisons = map[string]bool{"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true}

const comparisonArgWeight = 4

// instrument rewrites a parsed template so that executing it is bounded
// by the budget, deterministically:
//
//   - every list of nodes (the template, and each if, with and range
//     body and else branch) starts with a hidden action charging the
//     list's static weight, so loops and branches are paid for each time
//     they run;
//   - calls of functions that take the budget get it as a hidden first
//     argument;
//   - range pipelines end in rangeGuard, printing actions in printGuard.
//
// It rejects {{template}} and calls of the hidden functions.
//
// The template's own list is not given an action: it runs once per
// execution, and instrument returns its weight for the caller to charge.
func instrument(root *parse.ListNode) (int, error) {
	in := instrumenter{}
	w := in.weigh(root)
	return w, in.err
}

type instrumenter struct{ err error }

func (in *instrumenter) fail(format string, args ...any) {
	if in.err == nil {
		in.err = fmt.Errorf(format, args...)
	}
}

func stateArg(pos parse.Pos) parse.Node {
	return &parse.VariableNode{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$", stateKey}}
}

func call(pos parse.Pos, name string, args ...parse.Node) *parse.CommandNode {
	return &parse.CommandNode{
		NodeType: parse.NodeCommand, Pos: pos,
		Args: append([]parse.Node{parse.NewIdentifier(name).SetPos(pos), stateArg(pos)}, args...),
	}
}

// weigh instruments the nodes of l and returns their weight.
func (in *instrumenter) weigh(l *parse.ListNode) int {
	weight := 1
	for _, n := range l.Nodes {
		weight += in.node(n)
	}
	return weight
}

func (in *instrumenter) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	weight := in.weigh(l)
	counter := &parse.ActionNode{
		NodeType: parse.NodeAction, Pos: l.Pos,
		Pipe: &parse.PipeNode{
			NodeType: parse.NodePipe, Pos: l.Pos,
			Decl: []*parse.VariableNode{{NodeType: parse.NodeVariable, Pos: l.Pos, Ident: []string{stepVar}}},
			Cmds: []*parse.CommandNode{call(l.Pos, stepFunc, &parse.NumberNode{
				NodeType: parse.NodeNumber, Pos: l.Pos, IsInt: true, Int64: int64(weight), Text: fmt.Sprint(weight),
			})},
		},
	}
	l.Nodes = append([]parse.Node{counter}, l.Nodes...)
}

// node instruments n and returns its weight, without the lists it holds,
// which charge themselves when they run.
func (in *instrumenter) node(n parse.Node) int {
	switch x := n.(type) {
	case *parse.ActionNode:
		w := in.pipe(x.Pipe)
		if len(x.Pipe.Decl) == 0 && !boundedResult(x.Pipe) {
			x.Pipe.Cmds = append(x.Pipe.Cmds, call(x.Pos, printFunc))
		}
		return w
	case *parse.IfNode:
		w := 1 + in.pipe(x.Pipe)
		in.list(x.List)
		in.list(x.ElseList)
		return w
	case *parse.WithNode:
		w := 1 + in.pipe(x.Pipe)
		in.list(x.List)
		in.list(x.ElseList)
		return w
	case *parse.RangeNode:
		w := 1 + in.pipe(x.Pipe)
		x.Pipe.Cmds = append(x.Pipe.Cmds, call(x.Pipe.Pos, guardFunc))
		in.list(x.List)
		in.list(x.ElseList)
		return w
	case *parse.TemplateNode:
		in.fail("{{template %q}} is not supported", x.Name)
	}
	return 1
}

func (in *instrumenter) pipe(p *parse.PipeNode) int {
	if p == nil {
		return 0
	}
	w := len(p.Decl)
	for _, c := range p.Cmds {
		w += in.command(c)
	}
	return w
}

func (in *instrumenter) command(c *parse.CommandNode) int {
	w, argWeight := 1, 1
	if id, ok := c.Args[0].(*parse.IdentifierNode); ok {
		if strings.HasPrefix(id.Ident, internalPrefix) {
			in.fail("function %q is not defined", id.Ident)
			return w
		}
		if comparisons[id.Ident] {
			argWeight = comparisonArgWeight
		}
		for i := 1; i < len(c.Args); i++ {
			aw := 0
			c.Args[i], aw = in.arg(c.Args[i])
			w += aw * argWeight
		}
		if stateFuncs[id.Ident] {
			c.Args = append([]parse.Node{id, stateArg(id.Pos)}, c.Args[1:]...)
		}
		return w
	}
	for i := range c.Args {
		aw := 0
		c.Args[i], aw = in.arg(c.Args[i])
		w += aw
	}
	return w
}

// arg instruments an argument. A function named as a value ({{ len print }},
// print.Field) is a call without arguments: it gets the budget too.
func (in *instrumenter) arg(n parse.Node) (parse.Node, int) {
	switch x := n.(type) {
	case *parse.IdentifierNode:
		if strings.HasPrefix(x.Ident, internalPrefix) {
			in.fail("function %q is not defined", x.Ident)
		}
		if stateFuncs[x.Ident] {
			return &parse.PipeNode{NodeType: parse.NodePipe, Pos: x.Pos, Cmds: []*parse.CommandNode{{
				NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{x, stateArg(x.Pos)},
			}}}, 2
		}
		return x, 1
	case *parse.PipeNode:
		return x, in.pipe(x)
	case *parse.ChainNode:
		w := 0
		x.Node, w = in.arg(x.Node)
		return x, w + len(x.Field)
	case *parse.FieldNode:
		return x, len(x.Ident)
	case *parse.VariableNode:
		return x, len(x.Ident)
	}
	return n, 1
}
