package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// temporalUIWorkflowURL links to a workflow in the Temporal UI. The UI
// encodes the workflow ID as one path segment (encodeURIComponent), so "/"
// becomes %2F; without a run ID it opens the latest run.
func temporalUIWorkflowURL(uiAddr, namespace, workflowID string) string {
	return httpBaseURL(uiAddr) + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// workflowStatusPath is the start API path of a workflow's status. The route
// takes the rest of the path as the ID, so its "/" stays a raw "/".
func workflowStatusPath(workflowID string) string {
	segs := strings.Split(workflowID, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/workflows/" + strings.Join(segs, "/")
}

// httpBaseURL turns a listen address into a URL to reach it: a wildcard
// host (":8080", "0.0.0.0:8080") is reached on loopback.
func httpBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// checkReady fails with a hint when the crmflow stack does not answer ready.
func checkReady(ctx context.Context, c *http.Client, base string) error {
	u := strings.TrimSuffix(base, "/") + "/readyz"
	fail := func(format string, args ...any) error {
		return fmt.Errorf("is `crmflow dev` running? GET %s failed: %s", u, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail("%v", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fail("%s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// api calls the start API with the bearer token.
func (d *demo) api(ctx context.Context, method, path string) (int, []byte, error) {
	return d.do(ctx, method, path, nil, http.Header{"Authorization": {"Bearer " + d.token}})
}

// do sends one request to the crmflow server and returns the status code and
// body.
func (d *demo) do(ctx context.Context, method, path string, body []byte, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// httpError describes an unexpected answer, using crmflow's JSON error body
// when there is one.
func httpError(what string, code int, body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("%s: %d %s: %s", what, code, e.Error.Code, e.Error.Message)
	}
	return fmt.Errorf("%s: %d %s", what, code, bytes.TrimSpace(body))
}
