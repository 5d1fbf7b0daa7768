// Package train trains and fine-tunes ResNets in pure Go: Net, a
// trainable ResNet under resnet.Build's parameter names (so that a trained
// net exports through resnet.Build), optimizers and learning-rate
// schedules, the data pipeline (Split, Batches, Loader, Augment) and Run,
// the training loop that writes metrics, checkpoints as model images and a
// resumable state; the layers' backward passes are in internal/grad.
package train
