package template

import "maps"

// Context is the job a config is rendered for: hosts fill it from their
// own job, and usually store its JSON form (the field tags). Templates
// see it through the names listed in the package documentation.
type Context struct {
	JobID       string      `json:"jobId"`
	Version     Version     `json:"version"`
	Environment Environment `json:"environment"`
	Resource    Resource    `json:"resource"`
	Deployment  Deployment  `json:"deployment"`
}

// Version is the release being deployed (Context.Version).
type Version struct {
	ID     string         `json:"id,omitempty"`
	Tag    string         `json:"tag"`
	Name   string         `json:"name,omitempty"`
	Config map[string]any `json:"config,omitempty"`
}

// Environment is where the release goes (Context.Environment): the
// host's environment, not necessarily a GitHub one.
type Environment struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// Resource is the thing being deployed to (a cluster, a service, a host)
// (Context.Resource).
type Resource struct {
	ID         string         `json:"id,omitempty"`
	Identifier string         `json:"identifier"`
	Name       string         `json:"name,omitempty"`
	Kind       string         `json:"kind,omitempty"`
	Config     map[string]any `json:"config,omitempty"`
}

// Deployment is the host's deployment (pipeline) the job belongs to
// (Context.Deployment); not a GitHub deployment.
type Deployment struct {
	ID        string         `json:"id,omitempty"`
	Name      string         `json:"name,omitempty"`
	Slug      string         `json:"slug,omitempty"`
	Variables map[string]any `json:"variables,omitempty"`
}

// emptyMap stands in for absent config maps during rendering. Templates
// cannot modify maps, so one shared instance is safe there.
var emptyMap = map[string]any{}

func (c Context) data() map[string]any {
	orEmpty := func(m map[string]any) map[string]any {
		if m == nil {
			return emptyMap
		}
		return m
	}
	return map[string]any{
		"job": map[string]any{"id": c.JobID},
		"version": map[string]any{
			"id": c.Version.ID, "tag": c.Version.Tag, "name": c.Version.Name,
			"config": orEmpty(c.Version.Config),
		},
		"environment": map[string]any{"id": c.Environment.ID, "name": c.Environment.Name},
		"resource": map[string]any{
			"id": c.Resource.ID, "identifier": c.Resource.Identifier, "name": c.Resource.Name,
			"kind": c.Resource.Kind, "config": orEmpty(c.Resource.Config),
		},
		"deployment": map[string]any{
			"id": c.Deployment.ID, "name": c.Deployment.Name, "slug": c.Deployment.Slug,
			"variables": orEmpty(c.Deployment.Variables),
		},
	}
}

// Inputs returns the job context flat, with snake_case names: hosts
// serve it to workflows that fetch their job's context (as the reference
// server's inputs route does).
func (c Context) Inputs() map[string]any {
	return map[string]any{
		"job_id":               c.JobID,
		"version_tag":          c.Version.Tag,
		"version_name":         c.Version.Name,
		"environment_name":     c.Environment.Name,
		"environment_id":       c.Environment.ID,
		"resource_identifier":  c.Resource.Identifier,
		"resource_name":        c.Resource.Name,
		"resource_kind":        c.Resource.Kind,
		"resource_config":      maps.Clone(c.Resource.Config),
		"deployment_name":      c.Deployment.Name,
		"deployment_variables": maps.Clone(c.Deployment.Variables),
	}
}
