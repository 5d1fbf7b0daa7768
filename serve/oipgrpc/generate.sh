#!/bin/sh
# Regenerates open_inference_grpc.pb.go and open_inference_grpc_grpc.pb.go
# from open_inference_grpc.proto (go generate ./serve/oipgrpc). CI does not
# run it: the generated files are committed. It needs protoc (Debian:
# protobuf-compiler) and the two plugins at the versions the committed
# files were made with, installed into $GOBIN or $(go env GOPATH)/bin:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# The .proto is the specification's own file, unchanged; its Go package is
# given here (M option) rather than by an option in the file.
set -eu
cd "$(dirname "$0")"
bin=${GOBIN:-$(go env GOPATH)/bin}
pkg=github.com/edge-resnet/edge-resnet/serve/oipgrpc
protoc --plugin=protoc-gen-go="$bin/protoc-gen-go" --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
	--go_out=. --go_opt=paths=source_relative --go_opt=Mopen_inference_grpc.proto="$pkg;oipgrpc" \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mopen_inference_grpc.proto="$pkg;oipgrpc" \
	open_inference_grpc.proto
