package kernels

// impl is one registered implementation of a primitive: the ISA level it
// belongs to and what it needs from the CPU.
type impl[T any] struct {
	level string
	needs func() bool
	v     T
}

// registry holds every implementation of one primitive built into this
// binary, in registration order.
type registry[T any] struct {
	primitive string
	impls     []impl[T]
}

// add registers v at an ISA level; needs reports whether this CPU can run
// it. It returns v, so that ISA files can register from variable
// initializers.
func (r *registry[T]) add(level string, needs func() bool, v T) T {
	r.impls = append(r.impls, impl[T]{level: level, needs: needs, v: v})
	return v
}

// pick returns the first implementation, in the preference order of
// levels, that this CPU can run; the zero value (the Go code) if none.
func (r *registry[T]) pick(order []string) T {
	for _, level := range order {
		for _, im := range r.impls {
			if im.level == level && im.needs() {
				return im.v
			}
		}
	}
	var zero T
	return zero
}

// usable lists every implementation this CPU can run, in registration
// order (the generic one first where there is one), for tests.
func (r *registry[T]) usable() []T {
	var out []T
	for _, im := range r.impls {
		if im.needs() {
			out = append(out, im.v)
		}
	}
	return out
}

// pathDef is a path: a named preference order of ISA levels. rank orders
// paths (higher is better); needs is what the CPU must have for the path
// to be offered.
type pathDef struct {
	name  string
	rank  int
	needs func() bool
	order []string
}

// pathDefs are every path of this GOARCH and build, usable or not.
var pathDefs []pathDef

// definePath adds a path; ISA files call it from variable initializers.
func definePath(name string, rank int, needs func() bool, order ...string) bool {
	pathDefs = append(pathDefs, pathDef{name: name, rank: rank, needs: needs, order: order})
	return true
}
