// Package emailtemplates holds crmflow's transactional email templates,
// embedded in the binary, and renders them.
//
// A template is two files of one name and version: <name>.v<N>.html
// (html/template, so data is escaped for HTML) and <name>.v<N>.txt
// (text/template), the plain-text part. The text file also defines two
// blocks: "subject", the subject line, and "required", the data keys the
// template cannot do without, separated by spaces. Render finds the latest
// version of a name unless the name carries one ("welcome.v1"). Adding a
// template, or a new version of one, is adding its two files: a version is
// never edited once emails were sent with it, so the emails table's
// template_version names exactly what a customer got.
//
// Data is a JSON-shaped map (what a workflow passes through Temporal):
// numbers arrive as float64. The key "subject" is set by Render to the
// rendered subject for the HTML part's title. Functions available in both
// parts: money (minor units and a currency code, as Stripe writes them, to
// "42.00 EUR"), default (a fallback for an empty value).
//
// It is a library: it imports nothing of crmflow's.
package emailtemplates
