package train

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Streams of the random numbers the data pipeline draws, so that the
// split, the epoch orders and the augmentations of one seed are
// independent of each other.
const (
	streamSplit   = 0x73706c6974 // "split"
	streamShuffle = 0x73687566   // "shuf"
	streamAugment = 0x61756720   // "aug "
)

// mix hashes its arguments into one 64-bit value (SplitMix64's finalizer
// over a running sum), to seed a PCG from several numbers.
func mix(v ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, x := range v {
		h += x + 0x9e3779b97f4a7c15
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
		h = (h ^ (h >> 27)) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// Split divides the samples 0..n-1 into a training and a held-out
// validation part of valN samples (--val-split N), chosen at random from
// seed: the same (n, valN, seed) always gives the same split. Both lists
// are sorted and together hold every index exactly once. valN must be in
// 0..n; Split panics otherwise (callers check user input first).
func Split(n, valN int, seed uint64) (train, val []int) {
	if n < 0 || valN < 0 || valN > n {
		panic(fmt.Sprintf("train.Split: %d validation samples of %d", valN, n))
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	r := rand.New(rand.NewPCG(seed, streamSplit))
	r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	val = slices.Clone(perm[:valN])
	train = slices.Clone(perm[valN:])
	slices.Sort(val)
	slices.Sort(train)
	return train, val
}

// Batches cuts a list of sample indices into mini-batches, in a new random
// order every epoch. The order of epoch e depends only on (Seed, e) and
// the list, so a run resumed at epoch e sees the batches it would have
// seen without the interruption, and the same seed gives the same batches
// on every machine and with any number of threads.
//
// An epoch has ceil(len/Size) batches: the last one is smaller when Size
// does not divide the list (as PyTorch's DataLoader with drop_last=False),
// unless DropLast is set, which leaves it out (floor(len/Size) batches;
// its samples come back in other epochs' orders).
type Batches struct {
	Indices  []int  // the samples, e.g. Split's train
	Size     int    // samples per batch, >= 1
	Seed     uint64 // with the epoch number, the order of each epoch
	DropLast bool   // leave out the last, partial batch
	Shuffle  bool   // false: every epoch in the order of Indices (validation)
}

// NewBatches returns shuffled batches of size over indices.
func NewBatches(indices []int, size int, seed uint64) *Batches {
	return &Batches{Indices: indices, Size: size, Seed: seed, Shuffle: true}
}

// Len is the number of batches in an epoch.
func (b *Batches) Len() int {
	if b.Size < 1 {
		return 0
	}
	if b.DropLast {
		return len(b.Indices) / b.Size
	}
	return (len(b.Indices) + b.Size - 1) / b.Size
}

// Order is the order of the samples in epoch e (a new slice).
func (b *Batches) Order(epoch int) []int {
	order := slices.Clone(b.Indices)
	if b.Shuffle {
		r := rand.New(rand.NewPCG(mix(b.Seed, uint64(epoch)), streamShuffle))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

// Epoch returns the batches of epoch e, in order: Len() consecutive slices
// of Order(e), each Size long except perhaps the last. It panics when Size
// is below 1.
func (b *Batches) Epoch(epoch int) [][]int {
	if b.Size < 1 {
		panic(fmt.Sprintf("train.Batches: batch size %d", b.Size))
	}
	order := b.Order(epoch)
	out := make([][]int, 0, b.Len())
	for k := 0; k < b.Len(); k++ {
		lo := k * b.Size
		hi := min(lo+b.Size, len(order))
		out = append(out, order[lo:hi:hi])
	}
	return out
}
