package template

import (
	"errors"
	"fmt"

	"github.com/ghbridge/ghbridge/failure"
)

// The kinds of rendering failure. Every one is in class
// failure.ErrInvalidJobAgent: the config must change. Hosts match them
// with errors.Is to tell a config's author what to fix.
var (
	// ErrMissingKey means a template used a name the job context does not
	// have. The *FieldError names the key and the config field.
	ErrMissingKey = failure.New(failure.ErrInvalidJobAgent, "missing key")
	// ErrSyntax means a template does not parse.
	ErrSyntax = failure.New(failure.ErrInvalidJobAgent, "template syntax error")
	// ErrOutputTooLarge means a template's output exceeded the limit.
	ErrOutputTooLarge = failure.New(failure.ErrInvalidJobAgent, "template output too large")
	// ErrTimeout means rendering ran past the wall-clock limit, a last
	// resort, or past the end of the caller's context; a caller whose
	// context ended checks ctx.Err() first, as that is not the config's
	// fault.
	ErrTimeout = failure.New(failure.ErrInvalidJobAgent, "template rendering took too long")
	// ErrTooComplex means rendering took more execution steps than the
	// limit (Limits.MaxSteps): loops, branches, function calls and the
	// bytes functions process all count.
	ErrTooComplex = failure.New(failure.ErrInvalidJobAgent, "template rendering exceeds the step limit")
	// ErrTooManyIterations means range loops ran more iterations in total
	// than the limit.
	ErrTooManyIterations = failure.New(failure.ErrInvalidJobAgent, "template range loops exceed the iteration limit")
	// ErrInvalidJSON means a rendered document is not valid JSON.
	ErrInvalidJSON = failure.New(failure.ErrInvalidJobAgent, "rendered config is not valid JSON")
	// ErrInvalidConfig means the rendered agent config is not usable; the
	// error says which field and why.
	ErrInvalidConfig = failure.New(failure.ErrInvalidJobAgent, "invalid job agent config")
	// ErrNotAllowed means a template uses a construct ghbridge does not
	// allow (define, template, block).
	ErrNotAllowed = failure.New(failure.ErrInvalidJobAgent, "template construct not allowed")
	// ErrRender means a template failed while executing for a reason
	// other than the ones above (a function returned an error, a type
	// mismatch).
	ErrRender = failure.New(failure.ErrInvalidJobAgent, "template execution failed")
)

// FieldError reports a problem with one field of an agent config: every
// error Render returns is one. Hosts that show config errors field by
// field read it with errors.As.
type FieldError struct {
	// Field is the config field, as a path: "inputs.version", "ref",
	// "template" for a whole-document template.
	Field string
	// Key is the missing name, for ErrMissingKey.
	Key string
	// Kind is one of the sentinel errors of this package.
	Kind error
	// Detail says more, for a person.
	Detail string
	// Err is the cause, when there is one (text/template's error).
	Err error
}

// Error names the kind, the key and the field, and says what is wrong.
func (e *FieldError) Error() string {
	s := e.Kind.Error()
	if e.Key != "" {
		s += fmt.Sprintf(" %q", e.Key)
	}
	if e.Field != "" {
		s += " in config field " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches the error's Kind and its class (failure.ErrInvalidJobAgent).
func (e *FieldError) Is(target error) bool { return target == e.Kind || errors.Is(e.Kind, target) }

// Unwrap returns the cause (Err), if any.
func (e *FieldError) Unwrap() error { return e.Err }
