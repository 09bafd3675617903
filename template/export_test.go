package template

import (
	"context"
	"strings"
)

// The steps of Render, for the tests of package template_test.

var (
	ParseAgentConfig  = parseAgentConfig
	ClientPayloadSize = clientPayloadSize
)

const MaxWorkflowInputs = maxWorkflowInputs

// RenderString renders one template text against c, as Render renders
// each string of a config; field names it in errors.
func (r *Renderer) RenderString(ctx context.Context, field, text string, c Context) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := r.parse(func() string { return field }, text)
	if err != nil {
		return "", err
	}
	return r.newRun(ctx, c).execTemplate(nil, field, t)
}

// RenderMap renders an agent config as Render does before it types and
// validates it.
func (r *Renderer) RenderMap(ctx context.Context, cfg map[string]any, c Context) (map[string]any, error) {
	n, err := r.compileRoot(cfg)
	if err != nil {
		return nil, err
	}
	return r.newRun(ctx, c).document(n)
}
