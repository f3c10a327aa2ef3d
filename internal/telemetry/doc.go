// Package telemetry is how crmflow reports on itself beyond metrics:
// OpenTelemetry tracing (a tracer provider for the HTTP server and the
// Temporal SDK's tracing interceptor on the same provider) and Sentry
// (parked steps, final failures, HTTP panics). Both are off unless
// configured, and a nil *Tracing or *SentryReporter reports nothing.
//
// It is a library: it imports config and internal/store only.
package telemetry
