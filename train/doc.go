// Package train trains and fine-tunes ResNets in pure Go: optimizers and
// learning-rate schedules here; the layers' backward passes are in
// internal/grad.
package train
