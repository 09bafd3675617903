// Package template renders a job agent's config against the job it runs.
//
// An agent config is a JSON object. Any string value in it (at any depth)
// may be a Go text/template; the config may also hold one "template" key
// whose string renders to a JSON object of further fields:
//
//	{
//	  "owner": "acme", "repo": "deployer", "workflowId": "deploy.yml",
//	  "ref": "{{ .version.tag }}",
//	  "inputs": {"environment": "{{ .environment.name }}", "region": "{{ get .deployment.variables \"REGION\" \"us-east-1\" }}"}
//	}
//
// # Data
//
// Templates see the job context (see Context) under these names:
//
//	.job.id
//	.version.id  .version.tag  .version.name  .version.config.KEY
//	.environment.id  .environment.name
//	.resource.id  .resource.identifier  .resource.name  .resource.kind  .resource.config.KEY
//	.deployment.id  .deployment.name  .deployment.slug  .deployment.variables.KEY
//
// Rendering is strict: a missing key is an error (ErrMissingKey) naming
// the key and the config field, never an empty string. Read optional
// values with get (get .deployment.variables "REGION" "default") or test
// them with hasKey.
//
// # Functions
//
// Besides text/template's and, or, not, len, index, slice, eq, ne, lt, le,
// gt, ge and call:
//
//	strings  lower upper title trim trimPrefix trimSuffix replace contains
//	         hasPrefix hasSuffix split join truncate quote squote toString
//	         b64enc b64dec sha256sum printf print println html js urlquery
//	values   default coalesce required empty get hasKey list dict toJson
//	         fromJson atoi
//
// String helpers take the string last, so they chain in pipelines:
// {{ .resource.name | lower | replace "_" "-" }}. Nothing reads files,
// the environment or the clock.
//
// # Limits
//
// Configs come from users, so rendering is bounded (see Limits), and
// bounded deterministically: a config renders or fails the same way on
// an idle machine and on a starved one.
//
//   - Output: all templates of one config produce at most MaxOutput bytes
//     (256 KiB), and no value a function builds may be larger than what
//     is left of that. Every function that can grow its input (printf
//     and the other print functions, replace, join, split, quote,
//     squote, upper, lower, title, b64enc, toJson, html, js, urlquery)
//     computes the size of its result before allocating it; printf
//     sizes each argument as its verb, width and precision format it, so
//     {{ printf "%1000v" (split "" .x) }} fails before anything is
//     allocated. Printing a value is sized the same way. Exceeding it is
//     ErrOutputTooLarge.
//   - Steps: one Render call executes at most MaxSteps steps (100,000).
//     Each if, with and range body and each template charges its size
//     in nodes each time it runs, each function call and argument counts,
//     and functions count one step per 64 bytes they read or build (the
//     size of their result four times over, for the buffers building it;
//     fromJson 40 times its input). Exceeding it is ErrTooComplex. Range
//     loops of one call run at most MaxIterations (10,000) iterations
//     together, counted before a loop starts (ErrTooManyIterations).
//   - Templates: one template is at most MaxTemplate bytes (64 KiB), the
//     templates of one config together at most MaxTemplateTotal (128 KiB,
//     counting 128 bytes per template besides its text), since parsing
//     allocates about 80 bytes per byte of template.
//   - Time: Timeout (5 s) and the caller's context bound wall-clock time
//     (ErrTimeout). It is a last resort, far above what the step limit
//     allows; it is not what normally stops a template.
//
// Together these keep any config and job context that fit in a 1 MiB
// request within about 64 MB of allocation and well under a second of
// CPU per Render call, most of it decoding the config's JSON (see
// bombs_test.go for the worst cases we could write). define, block and
// template actions are not allowed. Parsed templates are cached by their
// text, and compiled configs of up to 64 KiB by theirs.
//
// # Typed configs
//
// Render returns an AgentConfig validated for its type:
// workflow_dispatch (the default: workflowId as a numeric id or a .yml or
// .yaml file name, ref defaulting to "main", string inputs),
// repository_dispatch (eventType, clientPayload), deployment
// (environment, payload, requiredContexts, autoMerge) or pull_request
// (branch, title, body, files). GitHub's limits are checked up front,
// counting the job_id ghbridge adds: at most 25 workflow inputs, an event
// type of at most 100 characters, at most 10 top-level client payload
// keys.
//
// Every type also accepts "report", what of the job's status to mirror
// back to GitHub (see ReportSpec):
//
//	"report": {"checkRun": {"name": "deploy", "headSha": "{{ .version.config.sha }}"}}
//
// mirrors it onto a check run on that commit; "deploymentStatus" (on by
// default for type deployment, and only valid there) onto the deployment.
package template
