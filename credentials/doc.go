// Package credentials decides how ghbridge authenticates to GitHub for a
// job and keeps the secrets involved out of sight.
//
// A GitHub App is configured with an AppConfig (see LoadAppConfig for the
// environment variables). A TokenCache exchanges the App's JWT for
// short-lived installation tokens: one exchange per installation per token
// lifetime however many goroutines ask, refreshed minutes before expiry on
// a context of its own. A Resolver picks the Credential for a job of a
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
