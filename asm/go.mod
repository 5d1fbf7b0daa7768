module github.com/edge-resnet/edge-resnet/asm

go 1.24

require github.com/mmcloughlin/avo v0.5.0 // indirect
