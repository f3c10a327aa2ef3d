package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestStdoutExporterWritesOneLinePerSpan exports a parent and a child span
// through the stdout exporter into a buffer.
func TestStdoutExporterWritesOneLinePerSpan(t *testing.T) {
	var buf bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(newLineExporter(&buf)))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "POST /webhooks/stripe")
	_, child := tp.Tracer("test").Start(ctx, "StartWorkflow:OrderConfirmation")
	child.SetAttributes(attribute.String("temporalWorkflowID", "order-confirmation/o1"))
	child.End()
	parent.End()
	require.NoError(t, tp.Shutdown(context.Background()))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var c, p spanLine
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &c))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &p))
	assert.Equal(t, "StartWorkflow:OrderConfirmation", c.Name)
	assert.Equal(t, p.TraceID, c.TraceID)
	assert.Equal(t, p.SpanID, c.ParentID)
	assert.Empty(t, p.ParentID)
	assert.Equal(t, "order-confirmation/o1", c.Attributes["temporalWorkflowID"])
}
