package oipgrpc_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/edge-resnet/edge-resnet/serve/oipgrpc"
)

// A client of `edge-resnet serve --grpc-addr 127.0.0.1:8001`: it sends an
// encoded image as a BYTES input and asks for the top 3 classes (the
// server's top_k extension). FP32 tensors go in Contents.Fp32Contents,
// or little-endian in RawInputContents (the response then comes in
// RawOutputContents).
func Example() {
	conn, err := grpc.NewClient("127.0.0.1:8001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := oipgrpc.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	meta, err := c.ModelMetadata(ctx, &oipgrpc.ModelMetadataRequest{Name: "resnet20-fashion-mnist"})
	if err != nil {
		log.Fatal(err) // codes.NotFound: no such model or version
	}
	img, err := os.ReadFile("boot.png")
	if err != nil {
		log.Fatal(err)
	}
	resp, err := c.ModelInfer(ctx, &oipgrpc.ModelInferRequest{
		ModelName: meta.Name, // ModelVersion: "2" for a version; "" for the greatest
		Parameters: map[string]*oipgrpc.InferParameter{
			"top_k": {ParameterChoice: &oipgrpc.InferParameter_Int64Param{Int64Param: 3}},
		},
		Inputs: []*oipgrpc.ModelInferRequest_InferInputTensor{{
			Name: meta.Inputs[0].Name, Datatype: "BYTES", Shape: []int64{1},
			Contents: &oipgrpc.InferTensorContents{BytesContents: [][]byte{img}},
		}},
		Outputs: []*oipgrpc.ModelInferRequest_InferRequestedOutputTensor{{Name: "top_k_labels"}, {Name: "top_k_probabilities"}},
	})
	if err != nil {
		log.Fatal(err) // InvalidArgument, ResourceExhausted (busy), Unavailable, DeadlineExceeded
	}
	labels, probs := resp.Outputs[0].Contents.BytesContents, resp.Outputs[1].Contents.Fp32Contents
	for i := range labels {
		fmt.Printf("%s %.3f\n", labels[i], probs[i])
	}
}
