//go:build !cgo

package dist

// LoadNCCL reports that NCCL needs a cgo build.
func LoadNCCL() (path string, version int, err error) { return "", 0, ErrNoCgo }

func ncclUniqueID() ([]byte, error)                                { return nil, ErrNoCgo }
func ncclInit(size int, id []byte, rank int) (uintptr, error)      { return 0, ErrNoCgo }
func ncclAllReduce(comm, stream, buf uintptr, n int, op int) error { return ErrNoCgo }
func ncclBroadcast(comm, stream, buf uintptr, n int) error         { return ErrNoCgo }
func ncclAsyncError(comm uintptr) error                            { return nil }
func ncclAbort(comm uintptr)                                       {}
func ncclDestroy(comm uintptr) error                               { return ErrNoCgo }

const (
	ncclSum = 0
	ncclMax = 2
	ncclAvg = 4
)
