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
# VERSION is `crmflow version`, the worker's build id in the Worker
# Deployment: pass the commit (docker build --build-arg VERSION=$(git
# describe --tags --always)). Without it the build id is a hash of the build
# context (.git is not in it), so different sources never share one.
ARG VERSION
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    version="${VERSION:-src-$(find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)}" && \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${version}" -o /out/crmflow ./cmd/crmflow

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
