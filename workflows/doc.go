// Package workflows holds crmflow's workflow code, one file per workflow
// (or per mode of a large one), the parker that turns a step's final
// failure into a dead letter and an operator's decision, and the activity
// policies declared once per provider. Workflows do no I/O: everything
// outside goes through activities, whose typed references the workflows
// take from package activities.
//
// The names and payloads other programs see (workflow types, IDs, signals,
// updates, queries, inputs and results) live in package contract. This
// package may import contract and activities, never the edge (webhooks,
// inbox, api), the worker or starter.
package workflows
