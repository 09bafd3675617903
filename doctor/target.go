package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"
	"go.yaml.in/yaml/v3"

	"github.com/ghbridge/ghbridge/credentials"
)

// target checks one repository: its installation, and its workflow.
func (d *run) target(ctx context.Context, t Target) {
	if t.Ref == "" {
		t.Ref = "main"
	}
	full := t.Owner + "/" + t.Repo
	var client *gh.Client
	r := d.check(ctx, full+" installation", func(ctx context.Context) Finding {
		var inst *gh.Installation
		var err error
		if t.InstallationID != 0 {
			inst, _, err = d.app.Apps.GetInstallation(ctx, t.InstallationID)
		} else {
			inst, _, err = d.app.Apps.FindRepositoryInstallation(ctx, t.Owner, t.Repo)
		}
		if err != nil {
			return d.failed(err, "the App's JWT", "no installation of the App reaches "+full,
				fmt.Sprintf("install the App on %s and grant it %s (https://github.com/apps/%s/installations/new)", t.Owner, full, d.meta.GetSlug()))
		}
		if inst.SuspendedAt != nil {
			return Finding{Grade: Fail, Detail: fmt.Sprintf("installation %d (%s) is suspended", inst.GetID(), inst.GetAccount().GetLogin()),
				Fix: "an owner of the account unsuspends it under Settings > GitHub Apps > Configure"}
		}
		tokens, err := d.clients.TokenCache(d.cfg.App)
		if err != nil {
			return Finding{Grade: Fail, Detail: err.Error(), Err: err}
		}
		if _, err := tokens.Token(ctx, inst.GetID()); err != nil {
			return d.failed(err, "the App's JWT", fmt.Sprintf("installation %d: no token", inst.GetID()), "see the message; reinstalling the App usually helps")
		}
		client, err = d.clients.Client(credentials.ForInstallation(tokens, inst.GetID(), "doctor"))
		if err != nil {
			return Finding{Grade: Fail, Detail: err.Error(), Err: err}
		}
		if _, _, err := client.Repositories.Get(ctx, t.Owner, t.Repo); err != nil {
			return d.failed(err, "the installation token", fmt.Sprintf("installation %d cannot see %s", inst.GetID(), full),
				"add the repository to the installation (Settings > GitHub Apps > Configure > Repository access)")
		}
		return Finding{Grade: Pass, Detail: fmt.Sprintf("installation %d (%s) grants %s, token issued", inst.GetID(), inst.GetAccount().GetLogin(), full)}
	})
	if t.Workflow == "" {
		return
	}
	if r.Grade == Fail {
		d.skip(full+" workflow", "needs the installation")
		return
	}
	d.check(ctx, full+" workflow", func(ctx context.Context) Finding { return d.workflow(ctx, client, t) })
}

func (d *run) workflow(ctx context.Context, client *gh.Client, t Target) Finding {
	var wf *gh.Workflow
	var err error
	if id, perr := strconv.ParseInt(t.Workflow, 10, 64); perr == nil && id > 0 {
		wf, _, err = client.Actions.GetWorkflowByID(ctx, t.Owner, t.Repo, id)
	} else {
		wf, _, err = client.Actions.GetWorkflowByFileName(ctx, t.Owner, t.Repo, t.Workflow)
	}
	if err != nil {
		return d.failed(err, "the installation token", fmt.Sprintf("workflow %q", t.Workflow),
			"use the workflow's file name under .github/workflows (deploy.yml) or its numeric id, from the default branch")
	}
	if wf.GetState() != "active" {
		return Finding{Grade: Fail, Detail: fmt.Sprintf("workflow %s is %s", wf.GetPath(), wf.GetState()), Fix: "enable it in the repository's Actions tab"}
	}
	if _, _, err := client.Git.GetRef(ctx, t.Owner, t.Repo, "heads/"+strings.TrimPrefix(t.Ref, "refs/heads/")); err != nil {
		return d.failed(err, "the installation token", fmt.Sprintf("ref %q", t.Ref), "push the branch, or set ref in the job agent config to an existing branch")
	}
	file, _, _, err := client.Repositories.GetContents(ctx, t.Owner, t.Repo, wf.GetPath(), &gh.RepositoryContentGetOptions{Ref: t.Ref})
	if err != nil {
		return d.failed(err, "the installation token", "reading "+wf.GetPath()+" at "+t.Ref,
			"grant the App Contents: read, or check the workflow by hand")
	}
	text, err := file.GetContent()
	if err != nil {
		return Finding{Grade: Warn, Detail: "could not decode " + wf.GetPath() + ": " + err.Error(), Fix: "check the workflow by hand"}
	}
	wc, err := parseWorkflow([]byte(text))
	if err != nil {
		return Finding{Grade: Fail, Detail: wf.GetPath() + " is not valid YAML: " + err.Error(), Fix: "fix the workflow file"}
	}
	var problems, fixes []string
	if !wc.Dispatchable {
		return Finding{Grade: Fail, Detail: wf.GetPath() + " at " + t.Ref + " has no workflow_dispatch trigger",
			Fix: "add \"on: workflow_dispatch\" with a job_id input (on the ref that is run)"}
	}
	if !wc.Inputs["job_id"] {
		problems = append(problems, "declares no job_id input (GitHub rejects undeclared inputs)")
		fixes = append(fixes, "add under on.workflow_dispatch.inputs:  job_id: { required: true, type: string }")
	}
	if !strings.Contains(wc.RunName, "job_id") {
		problems = append(problems, "has no run-name with the job id (servers without return_run_details, GitHub Enterprise Server 3.20 and older, cannot find its runs)")
		fixes = append(fixes, "add: run-name: Deploy ${{ inputs.job_id }}")
	}
	if len(problems) > 0 {
		return Finding{Grade: Fail, Detail: wf.GetPath() + " " + strings.Join(problems, "; "), Fix: strings.Join(fixes, "; ")}
	}
	return Finding{Grade: Pass, Detail: fmt.Sprintf("%s at %s: workflow_dispatch, job_id input, job_id in run-name", wf.GetPath(), t.Ref)}
}

// workflowFile is what the doctor reads of a workflow file: its run-name,
// and whether and with which inputs it can be dispatched.
type workflowFile struct {
	RunName string
	// Dispatchable reports an on: workflow_dispatch trigger, Inputs its
	// declared inputs.
	Dispatchable bool
	Inputs       map[string]bool
}

// parseWorkflow reads a workflow file's run-name and its
// workflow_dispatch trigger in any of the forms of on: (a name, a list,
// a map).
func parseWorkflow(src []byte) (workflowFile, error) {
	var doc struct {
		RunName string    `yaml:"run-name"`
		On      yaml.Node `yaml:"on"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return workflowFile{}, err
	}
	w := workflowFile{RunName: doc.RunName, Inputs: map[string]bool{}}
	on := &doc.On
	switch on.Kind {
	case yaml.ScalarNode:
		w.Dispatchable = on.Value == "workflow_dispatch"
	case yaml.SequenceNode:
		for _, n := range on.Content {
			if n.Value == "workflow_dispatch" {
				w.Dispatchable = true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(on.Content); i += 2 {
			if on.Content[i].Value != "workflow_dispatch" {
				continue
			}
			w.Dispatchable = true
			wd := on.Content[i+1]
			for j := 0; j+1 < len(wd.Content); j += 2 {
				if wd.Content[j].Value == "inputs" {
					in := wd.Content[j+1]
					for k := 0; k+1 < len(in.Content); k += 2 {
						w.Inputs[in.Content[k].Value] = true
					}
				}
			}
		}
	}
	return w, nil
}
