//go:build cgo

package dist

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include "mpi_api.h"

static tr_mpi_api tr_mpi;

// RTLD_GLOBAL: Open MPI's plugins (mca_*.so), which it dlopens itself,
// resolve libmpi's symbols from the global scope.
static void *tr_mpi_dlopen(const char *name, char *err, size_t errlen) {
	dlerror();
	void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
	}
	return h;
}

static void *tr_mpi_dlsym(void *h, const char *name) { return dlsym(h, name); }

static const char *tr_mpi_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name || !lm->l_name[0]) return NULL;
	return lm->l_name;
}

static void tr_mpi_set(tr_mpi_api *a) { tr_mpi = *a; }

static int tr_mpi_init(int *provided) {
	int flag = 0;
	((tr_MPI_Initialized_t)tr_mpi.MPI_Initialized)(&flag);
	if (flag) {
		*provided = TR_MPI_THREAD_FUNNELED;
		return TR_MPI_SUCCESS;
	}
	int rc = ((tr_MPI_Init_thread_t)tr_mpi.MPI_Init_thread)(NULL, NULL, TR_MPI_THREAD_FUNNELED, provided);
	if (rc != TR_MPI_SUCCESS) return rc;
	// Errors come back as codes instead of aborting inside the library, so
	// that the caller can say what it was doing.
	return ((tr_MPI_Comm_set_errhandler_t)tr_mpi.MPI_Comm_set_errhandler)(tr_mpi.comm_world, tr_mpi.errors_return);
}

static int tr_mpi_rank_size(int *rank, int *size) {
	int rc = ((tr_MPI_Comm_rank_t)tr_mpi.MPI_Comm_rank)(tr_mpi.comm_world, rank);
	if (rc != TR_MPI_SUCCESS) return rc;
	return ((tr_MPI_Comm_size_t)tr_mpi.MPI_Comm_size)(tr_mpi.comm_world, size);
}

// dt: 0 float, 1 double; op: 0 sum, 1 max.
static int tr_mpi_allreduce(void *buf, int count, int dt, int op) {
	return ((tr_MPI_Allreduce_t)tr_mpi.MPI_Allreduce)(TR_MPI_IN_PLACE, buf, count,
		dt ? tr_mpi.double_ : tr_mpi.float_, op ? tr_mpi.op_max : tr_mpi.op_sum, tr_mpi.comm_world);
}

// dt: 0 float, 2 byte.
static int tr_mpi_bcast(void *buf, int count, int dt, int root) {
	return ((tr_MPI_Bcast_t)tr_mpi.MPI_Bcast)(buf, count, dt == 2 ? tr_mpi.byte_ : tr_mpi.float_, root, tr_mpi.comm_world);
}

static int tr_mpi_abort(int code) { return ((tr_MPI_Abort_t)tr_mpi.MPI_Abort)(tr_mpi.comm_world, code); }

static int tr_mpi_finalize(void) {
	int flag = 0;
	((tr_MPI_Finalized_t)tr_mpi.MPI_Finalized)(&flag);
	if (flag) return TR_MPI_SUCCESS;
	return ((tr_MPI_Finalize_t)tr_mpi.MPI_Finalize)();
}

static void tr_mpi_error_string(int code, char *s) {
	int len = 0;
	s[0] = 0;
	if (((tr_MPI_Error_string_t)tr_mpi.MPI_Error_string)(code, s, &len) != TR_MPI_SUCCESS) s[0] = 0;
}

static void tr_mpi_version(void *fn, char *s) {
	int len = 0;
	s[0] = 0;
	((tr_MPI_Get_library_version_t)fn)(s, &len);
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// mpiSymbols is the resolution table: every function and handle by name.
func mpiSymbols(a *C.tr_mpi_api) []struct {
	name string
	ptr  *unsafe.Pointer
} {
	return []struct {
		name string
		ptr  *unsafe.Pointer
	}{
		{"MPI_Init_thread", &a.MPI_Init_thread}, {"MPI_Initialized", &a.MPI_Initialized},
		{"MPI_Finalized", &a.MPI_Finalized}, {"MPI_Finalize", &a.MPI_Finalize},
		{"MPI_Comm_rank", &a.MPI_Comm_rank}, {"MPI_Comm_size", &a.MPI_Comm_size},
		{"MPI_Comm_set_errhandler", &a.MPI_Comm_set_errhandler}, {"MPI_Allreduce", &a.MPI_Allreduce},
		{"MPI_Bcast", &a.MPI_Bcast}, {"MPI_Abort", &a.MPI_Abort}, {"MPI_Error_string", &a.MPI_Error_string},
		{"MPI_Get_library_version", &a.MPI_Get_library_version},
		{"ompi_mpi_comm_world", &a.comm_world}, {"ompi_mpi_float", &a.float_}, {"ompi_mpi_double", &a.double_}, {"ompi_mpi_byte", &a.byte_},
		{"ompi_mpi_op_sum", &a.op_sum}, {"ompi_mpi_op_max", &a.op_max}, {"ompi_mpi_errors_return", &a.errors_return},
	}
}

var mpiLoad struct {
	once    sync.Once
	path    string
	version string
	err     error
}

// LoadMPI opens Open MPI's library (once) and resolves every symbol; it
// does not initialise MPI. It returns the file loaded and the library's
// version line.
func LoadMPI() (path, version string, err error) {
	mpiLoad.once.Do(func() {
		mpiLoad.path, mpiLoad.version, mpiLoad.err = loadMPI(libNames())
	})
	return mpiLoad.path, mpiLoad.version, mpiLoad.err
}

// loadMPI opens the first loadable of names and resolves the table.
func loadMPI(names []string) (string, string, error) {
	errbuf := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(errbuf))
	le := &LoadError{Tried: names, FromEnv: os.Getenv(EnvLibMPI) != ""}
	var h unsafe.Pointer
	for _, name := range names {
		cname := C.CString(name)
		h = C.tr_mpi_dlopen(cname, errbuf, 1024)
		C.free(unsafe.Pointer(cname))
		if h != nil {
			break
		}
		le.Reasons = append(le.Reasons, C.GoString(errbuf))
	}
	if h == nil {
		return "", "", le
	}
	path := names[0]
	if cp := C.tr_mpi_dlpath(h); cp != nil {
		path = C.GoString(cp)
	}
	var a C.tr_mpi_api
	for _, s := range mpiSymbols(&a) {
		cname := C.CString(s.name)
		p := C.tr_mpi_dlsym(h, cname)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			le.Path, le.Symbol = path, s.name
			return "", "", le
		}
		*s.ptr = p
	}
	C.tr_mpi_set(&a)
	buf := (*C.char)(C.malloc(C.TR_MPI_MAX_LIBRARY_VERSION_STRING + 1))
	defer C.free(unsafe.Pointer(buf))
	C.tr_mpi_version(a.MPI_Get_library_version, buf)
	// "Open MPI v4.1.4, package: Debian OpenMPI, ident: ...": the first part.
	version, _, _ := strings.Cut(strings.TrimSpace(C.GoString(buf)), ",")
	return path, version, nil
}

// mpiError is an MPI return code with the library's words for it.
func mpiError(what string, rc C.int) error {
	if rc == C.TR_MPI_SUCCESS {
		return nil
	}
	buf := (*C.char)(C.malloc(C.TR_MPI_MAX_ERROR_STRING + 1))
	defer C.free(unsafe.Pointer(buf))
	C.tr_mpi_error_string(rc, buf)
	return fmt.Errorf("%s: MPI error %d: %s", what, int(rc), C.GoString(buf))
}

// The thin layer: each runs on the communicator's own thread (comm.go).

func mpiInit() (rank, size int, err error) {
	var provided C.int
	if err := mpiError("MPI_Init_thread", C.tr_mpi_init(&provided)); err != nil {
		return 0, 0, err
	}
	var r, s C.int
	if err := mpiError("MPI_Comm_rank/size", C.tr_mpi_rank_size(&r, &s)); err != nil {
		return 0, 0, err
	}
	return int(r), int(s), nil
}

func mpiAllreduceF32(x []float32, max bool) error {
	return mpiError("MPI_Allreduce", C.tr_mpi_allreduce(unsafe.Pointer(&x[0]), C.int(len(x)), 0, cbool(max)))
}

func mpiAllreduceF64(x []float64, max bool) error {
	return mpiError("MPI_Allreduce", C.tr_mpi_allreduce(unsafe.Pointer(&x[0]), C.int(len(x)), 1, cbool(max)))
}

func mpiBcastF32(x []float32, root int) error {
	return mpiError("MPI_Bcast", C.tr_mpi_bcast(unsafe.Pointer(&x[0]), C.int(len(x)), 0, C.int(root)))
}

func mpiBcastBytes(x []byte, root int) error {
	return mpiError("MPI_Bcast", C.tr_mpi_bcast(unsafe.Pointer(&x[0]), C.int(len(x)), 2, C.int(root)))
}

func mpiAbort(code int) { C.tr_mpi_abort(C.int(code)) }

func mpiFinalize() error { return mpiError("MPI_Finalize", C.tr_mpi_finalize()) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// haveCgo says whether this build can load MPI.
const haveCgo = true
