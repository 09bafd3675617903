// Package credentials decides how ghbridge authenticates to GitHub for a
// job and keeps the secrets involved out of sight.
//
// A GitHub App is configured with an AppConfig (see LoadAppConfig for the
// environment variables). Installation tokens come from a TokenSource;
// package github's TokenCache is the implementation, which exchanges the
// App's JWT for them (this package sends no HTTP request). A Resolver
// picks the Credential for a job of a
// tenant: the job config's installation id, else its token (literal or a
// "{{ secrets.NAME }}" reference resolved in the tenant's namespace of a
// SecretStore), else the installation linked to the repository in an
// InstallationStore, else ErrNotConfigured. Only installations the store
// records as claimed by the job's tenant are ever used (ErrNotPermitted);
// single-tenant hosts leave the tenant empty.
//
// Tokens and keys are held in Secret values, and every type that carries
// one formats, marshals and logs as "[redacted]". Hosts observe what
// happens through an AuditSink.
package credentials
