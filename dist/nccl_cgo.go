//go:build cgo

package dist

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nccl_api.h"

static tr_nccl_api tr_nccl;

static void *tr_nccl_dlopen(const char *name, char *err, size_t errlen) {
	dlerror();
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
	}
	return h;
}
static void *tr_nccl_dlsym(void *h, const char *name) { return dlsym(h, name); }
static const char *tr_nccl_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name || !lm->l_name[0]) return NULL;
	return lm->l_name;
}
static void tr_nccl_set(tr_nccl_api *a) { tr_nccl = *a; }

static int tr_nccl_version(void *fn, int *v) { return ((tr_ncclGetVersion_t)fn)(v); }
static int tr_nccl_unique_id(char *id) { return ((tr_ncclGetUniqueId_t)tr_nccl.ncclGetUniqueId)((tr_ncclUniqueId *)id); }
static int tr_nccl_init(void **comm, int nranks, const char *id, int rank) {
	tr_ncclUniqueId u;
	memcpy(&u, id, sizeof u);
	return ((tr_ncclCommInitRank_t)tr_nccl.ncclCommInitRank)(comm, nranks, u, rank);
}
static int tr_nccl_allreduce(void *buf, size_t n, int op, void *comm, void *stream) {
	return ((tr_ncclAllReduce_t)tr_nccl.ncclAllReduce)(buf, buf, n, TR_ncclFloat32, op, comm, stream);
}
static int tr_nccl_bcast(void *buf, size_t n, void *comm, void *stream) {
	return ((tr_ncclBroadcast_t)tr_nccl.ncclBroadcast)(buf, buf, n, TR_ncclFloat32, 0, comm, stream);
}
static int tr_nccl_async_error(void *comm, int *r) { return ((tr_ncclCommGetAsyncError_t)tr_nccl.ncclCommGetAsyncError)(comm, r); }
static int tr_nccl_abort(void *comm) { return ((tr_ncclCommAbort_t)tr_nccl.ncclCommAbort)(comm); }
static int tr_nccl_destroy(void *comm) { return ((tr_ncclCommDestroy_t)tr_nccl.ncclCommDestroy)(comm); }
static const char *tr_nccl_error_string(int r) { return ((tr_ncclGetErrorString_t)tr_nccl.ncclGetErrorString)(r); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

func ncclSymbols(a *C.tr_nccl_api) []struct {
	name string
	ptr  *unsafe.Pointer
} {
	return []struct {
		name string
		ptr  *unsafe.Pointer
	}{
		{"ncclGetVersion", &a.ncclGetVersion}, {"ncclGetUniqueId", &a.ncclGetUniqueId}, {"ncclCommInitRank", &a.ncclCommInitRank},
		{"ncclAllReduce", &a.ncclAllReduce}, {"ncclBroadcast", &a.ncclBroadcast}, {"ncclCommGetAsyncError", &a.ncclCommGetAsyncError},
		{"ncclCommAbort", &a.ncclCommAbort}, {"ncclCommDestroy", &a.ncclCommDestroy}, {"ncclGetErrorString", &a.ncclGetErrorString},
	}
}

var ncclLoad struct {
	once    sync.Once
	path    string
	version int
	err     error
}

// LoadNCCL opens NCCL (once) and resolves every symbol. It returns the file
// loaded and NCCL_VERSION_CODE (2.10.3 is 21003).
func LoadNCCL() (path string, version int, err error) {
	ncclLoad.once.Do(func() {
		ncclLoad.path, ncclLoad.version, ncclLoad.err = loadNCCL(ncclNames())
	})
	return ncclLoad.path, ncclLoad.version, ncclLoad.err
}

func loadNCCL(names []string) (string, int, error) {
	errbuf := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(errbuf))
	le := &NCCLLoadError{Tried: names}
	var h unsafe.Pointer
	for _, name := range names {
		cname := C.CString(name)
		h = C.tr_nccl_dlopen(cname, errbuf, 1024)
		C.free(unsafe.Pointer(cname))
		if h != nil {
			break
		}
		le.Reasons = append(le.Reasons, C.GoString(errbuf))
	}
	if h == nil {
		return "", 0, le
	}
	path := names[0]
	if cp := C.tr_nccl_dlpath(h); cp != nil {
		path = C.GoString(cp)
	}
	var a C.tr_nccl_api
	for _, s := range ncclSymbols(&a) {
		cname := C.CString(s.name)
		p := C.tr_nccl_dlsym(h, cname)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			le.Path, le.Symbol = path, s.name
			return "", 0, le
		}
		*s.ptr = p
	}
	C.tr_nccl_set(&a)
	var v C.int
	if rc := C.tr_nccl_version(a.ncclGetVersion, &v); rc != C.TR_ncclSuccess {
		return "", 0, ncclError("ncclGetVersion", rc)
	}
	return path, int(v), nil
}

func ncclError(what string, rc C.int) error {
	if rc == C.TR_ncclSuccess {
		return nil
	}
	return fmt.Errorf("%s: NCCL error %d: %s", what, int(rc), C.GoString(C.tr_nccl_error_string(rc)))
}

func ncclUniqueID() ([]byte, error) {
	id := make([]byte, ncclIDBytes)
	return id, ncclError("ncclGetUniqueId", C.tr_nccl_unique_id((*C.char)(unsafe.Pointer(&id[0]))))
}

func ncclInit(size int, id []byte, rank int) (uintptr, error) {
	var comm unsafe.Pointer
	rc := C.tr_nccl_init(&comm, C.int(size), (*C.char)(unsafe.Pointer(&id[0])), C.int(rank))
	return uintptr(comm), ncclError("ncclCommInitRank", rc)
}

func ncclAllReduce(comm, stream, buf uintptr, n int, op int) error {
	return ncclError("ncclAllReduce", C.tr_nccl_allreduce(ptr(buf), C.size_t(n), C.int(op), ptr(comm), ptr(stream)))
}

func ncclBroadcast(comm, stream, buf uintptr, n int) error {
	return ncclError("ncclBroadcast", C.tr_nccl_bcast(ptr(buf), C.size_t(n), ptr(comm), ptr(stream)))
}

func ncclAsyncError(comm uintptr) error {
	var r C.int
	if err := ncclError("ncclCommGetAsyncError", C.tr_nccl_async_error(ptr(comm), &r)); err != nil {
		return err
	}
	return ncclError("NCCL (asynchronous)", r)
}

func ncclAbort(comm uintptr) { C.tr_nccl_abort(ptr(comm)) }
func ncclDestroy(comm uintptr) error {
	return ncclError("ncclCommDestroy", C.tr_nccl_destroy(ptr(comm)))
}

// ptr turns a handle or device address kept as uintptr back into the C
// pointer it is (none of them points into Go memory).
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

const (
	ncclSum = int(C.TR_ncclSum)
	ncclMax = int(C.TR_ncclMax)
	ncclAvg = int(C.TR_ncclAvg)
)
