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
// Configs come from users, so rendering is bounded (see Limits): output
// size, template size, total range iterations and wall time. Exceeding one
// is an error (ErrOutputTooLarge, ErrTooManyIterations, ErrTimeout), never
// a hang or an out-of-memory. define, block and template actions are not
// allowed. Parsed templates are cached by their text.
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
