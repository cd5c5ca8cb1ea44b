//go:build !cgo

package cuda

// A build without cgo cannot load the driver: the package offers only Probe,
// which says so, and the report types, so that the program builds and falls
// back to the CPU with a reason a user can act on.

// Probe reports that GPU support needs a cgo build.
func Probe() Report {
	var r Report
	r.fail(StepNoCgo, "this binary was built without cgo (CGO_ENABLED=0), which GPU support needs: rebuild with CGO_ENABLED=1; training runs on the CPU", ErrNoCgo)
	return r
}
