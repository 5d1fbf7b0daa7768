package serve

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// model is a name and its versions, each an entry of its own (sessions,
// admission places, metrics).
type model struct {
	name     string
	versions map[string]*entry
	order    []string // ascending, by CompareVersions
}

// add serves e as one more version of md.
func (md *model) add(e *entry) {
	md.versions[e.version] = e
	md.order = append(md.order, e.version)
	slices.SortFunc(md.order, CompareVersions)
}

// latest is the version served to requests that name none: the greatest.
func (md *model) latest() *entry { return md.versions[md.order[len(md.order)-1]] }

// CompareVersions orders versions: as numbers when both are decimal
// integers ("9" < "10"), else as strings, numbers first. A request that
// names no version gets the greatest.
func CompareVersions(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// lookup is the version a request names ("": the latest) of the model it
// names, or a 404 saying what is served.
func (s *Server) lookup(name, version string) (*entry, error) {
	md := s.models[name]
	if md == nil {
		return nil, errorf(http.StatusNotFound, "unknown model %q (served: %s)", name, strings.Join(s.names, ", "))
	}
	if version == "" {
		return md.latest(), nil
	}
	e := md.versions[version]
	if e == nil {
		return nil, errorf(http.StatusNotFound, "model %q has no version %q (versions: %s)", name, version, strings.Join(md.order, ", "))
	}
	return e, nil
}

// Versions lists the versions served under name, ascending (nil for a
// name not served).
func (s *Server) Versions(name string) []string {
	if md := s.models[name]; md != nil {
		return slices.Clone(md.order)
	}
	return nil
}

// modelMetadata is $metadata_model_response for e's current model, with
// every version of its name.
func (s *Server) modelMetadata(e *entry) modelMetadata {
	meta := e.cur.Load().meta
	meta.Versions = s.models[e.name].order
	return meta
}

// entryOf is the entry Reload replaces the model of.
func (s *Server) entryOf(nm Named) (*entry, error) {
	e, err := s.lookup(nm.Name, nm.version())
	if err != nil {
		return nil, fmt.Errorf("serve: reload of %q version %q: not served (%v)", nm.Name, nm.version(), err)
	}
	return e, nil
}
