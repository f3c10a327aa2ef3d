# syntax=docker/dockerfile:1

# crmflow's one binary in a small non-root image. The same image runs
# `migrate`, `worker` and `serve` (see docker-compose.yml).

# The build stage runs on the builder's own platform and cross-compiles, so an
# arm64 image builds without emulation. The Go version is the one go.mod
# declares; GOTOOLCHAIN=local makes a mismatch fail instead of downloading
# another toolchain.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
WORKDIR /src

# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/crmflow ./cmd/crmflow

# distroless/static has CA certificates (provider APIs are HTTPS) and tzdata,
# no shell and no package manager. The binary is pure Go (CGO_ENABLED=0), so
# it needs nothing else. There is no curl either: health checks use
# `crmflow probe <url>`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/crmflow /crmflow
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/crmflow"]
