# Release builds of the edge-resnet CLI: static binaries (CGO_ENABLED=0,
# -trimpath, -ldflags "-s -w", the version stamped into main.version) for
# Linux amd64, arm64, armv7 and armv6, one tarball each and SHA256SUMS, in
# dist/. Needs only go, GNU tar, gzip and sha256sum (deploy/README.md).
#
#   make release                  # dist/edge-resnet-VERSION-linux-{amd64,arm64,armv7,armv6}.tar.gz, dist/SHA256SUMS
#   make release VERSION=1.2.3    # another version string
#   make clean

GO       ?= go
# The tag on HEAD if there is one, else the library's Version plus the commit.
VERSION  ?= $(shell git describe --tags --exact-match 2>/dev/null || \
	echo "$$(sed -n 's/^const Version = "\(.*\)"/\1/p' model.go)+$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)")
DIST     := dist
PLATFORMS := linux/amd64 linux/arm64 linux/armv7 linux/armv6
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Reproducible tarballs: fixed order, owner and time (the commit's).
MTIME    := $(shell git log -1 --format=%cI 2>/dev/null || echo 2026-01-01T00:00:00Z)
TARFLAGS := --sort=name --owner=0 --group=0 --numeric-owner --mtime=$(MTIME)
EXTRA    := README.md deploy/README.md deploy/systemd/edge-resnet.service deploy/systemd/edge-resnet-camera.service

.PHONY: release clean $(PLATFORMS)

release: $(PLATFORMS)
	cd $(DIST) && sha256sum *.tar.gz > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

# linux/armv7 -> GOARCH=arm GOARM=7; linux/amd64 -> GOARCH=amd64.
$(PLATFORMS):
	@set -e; os=$(word 1,$(subst /, ,$@)); arch=$(word 2,$(subst /, ,$@)); \
	goarch=$$arch; goarm=; \
	case $$arch in armv*) goarch=arm; goarm=$${arch#armv};; esac; \
	name=edge-resnet-$(VERSION)-$$os-$$arch; dir=$(DIST)/$$name; \
	rm -rf $$dir; mkdir -p $$dir; \
	echo "building $$name (GOOS=$$os GOARCH=$$goarch GOARM=$$goarm)"; \
	CGO_ENABLED=0 GOOS=$$os GOARCH=$$goarch GOARM=$$goarm \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$dir/edge-resnet ./cmd/edge-resnet; \
	for f in $(EXTRA); do mkdir -p $$dir/$$(dirname $$f); cp $$f $$dir/$$f; done; \
	tar $(TARFLAGS) -C $(DIST) -cf - $$name | gzip -n -9 > $(DIST)/$$name.tar.gz; \
	rm -rf $$dir

clean:
	rm -rf $(DIST)
