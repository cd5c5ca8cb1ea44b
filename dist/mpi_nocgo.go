//go:build !cgo

package dist

// A build without cgo cannot load Open MPI: a distributed launch says so
// (see OpenMPI); a single process never gets here.

// LoadMPI reports that MPI needs a cgo build.
func LoadMPI() (path, version string, err error) { return "", "", ErrNoCgo }

func mpiInit() (rank, size int, err error)        { return 0, 0, ErrNoCgo }
func mpiAllreduceF32(x []float32, max bool) error { return ErrNoCgo }
func mpiAllreduceF64(x []float64, max bool) error { return ErrNoCgo }
func mpiBcastF32(x []float32, root int) error     { return ErrNoCgo }
func mpiBcastBytes(x []byte, root int) error      { return ErrNoCgo }
func mpiAbort(code int)                           {}
func mpiFinalize() error                          { return ErrNoCgo }

const haveCgo = false
