// Package httpserver is the plumbing every HTTP room of crmflow shares
// (api, webhooks, the console): the one JSON error shape, strict JSON
// bodies, per-route metrics, panic recovery and reports, tracing, request
// timeouts, and running a server with a graceful shutdown.
//
// It is a library: it imports no crmflow package but internal/appmetrics.
package httpserver
