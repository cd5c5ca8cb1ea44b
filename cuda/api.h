/*
 * api.h - the raw layer of package cuda: the CUDA driver API and cuBLAS entry
 * points this package calls, declared without the vendor headers.
 *
 * Each entry point has a function-pointer type tr_pfn_<symbol>, where <symbol>
 * is the exported name cuda.h / cublas_v2.h map the public name to (cuMemAlloc
 * -> cuMemAlloc_v2). The signatures are copied from cuda.h and cublas_api.h;
 * sigcheck_test.go compiles this file against the real headers, where they are
 * installed, and fails on any difference.
 *
 * The pointers live in two tables (tr_cu, tr_blas) of void*, filled by dlsym
 * when the libraries are loaded (cuda_cgo.go). The static inline shims below
 * call through them; the ones that need a context first make the caller's
 * context current on this OS thread, because goroutines migrate between
 * threads and the CUDA current context is per thread.
 *
 * Compile with TR_REAL_HEADERS defined after including <cuda.h> and
 * <cublas_v2.h> to use their types instead of the declarations below.
 */
#ifndef TRAINER_CUDA_API_H
#define TRAINER_CUDA_API_H

#include <stddef.h>

#ifndef TR_REAL_HEADERS
/* The few types we need, ABI-identical to the vendor ones on LP64 Linux. */
typedef int CUresult;                 /* enum cudaError_enum */
typedef int CUdevice;                 /* CUdevice_v1: int */
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 */
typedef int CUdevice_attribute;       /* enum CUdevice_attribute_enum */
typedef int CUjit_option;             /* enum CUjit_option_enum */
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *cudaStream_t; /* same type as CUstream */
typedef int cublasStatus_t;           /* enum */
typedef int cublasOperation_t;        /* enum: N=0, T=1, C=2 */
typedef int cublasMath_t;             /* enum */
typedef int libraryPropertyType;      /* enum: MAJOR=0, MINOR=1, PATCH=2 */
typedef int cudaDataType;             /* enum cudaDataType_t: CUDA_R_32F=0, CUDA_R_16BF=14 */
typedef int cublasComputeType_t;      /* enum: CUBLAS_COMPUTE_32F=68 */
typedef int cublasGemmAlgo_t;         /* enum: CUBLAS_GEMM_DEFAULT=-1 */
typedef struct cublasContext *cublasHandle_t;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUgraphNode_st *CUgraphNode;
typedef int CUstreamCaptureMode;      /* enum CUstreamCaptureMode_enum */
#endif

/* ---- CUDA driver API (libcuda.so.1) ---- */
typedef CUresult (*tr_pfn_cuInit)(unsigned int Flags);
typedef CUresult (*tr_pfn_cuDriverGetVersion)(int *driverVersion);
typedef CUresult (*tr_pfn_cuDeviceGetCount)(int *count);
typedef CUresult (*tr_pfn_cuDeviceGet)(CUdevice *device, int ordinal);
typedef CUresult (*tr_pfn_cuDeviceGetName)(char *name, int len, CUdevice dev);
typedef CUresult (*tr_pfn_cuDeviceGetAttribute)(int *pi, CUdevice_attribute attrib, CUdevice dev);
typedef CUresult (*tr_pfn_cuDeviceTotalMem_v2)(size_t *bytes, CUdevice dev);
typedef CUresult (*tr_pfn_cuDevicePrimaryCtxRetain)(CUcontext *pctx, CUdevice dev);
typedef CUresult (*tr_pfn_cuDevicePrimaryCtxRelease_v2)(CUdevice dev);
typedef CUresult (*tr_pfn_cuCtxSetCurrent)(CUcontext ctx);
typedef CUresult (*tr_pfn_cuCtxSynchronize)(void);
typedef CUresult (*tr_pfn_cuMemAlloc_v2)(CUdeviceptr *dptr, size_t bytesize);
typedef CUresult (*tr_pfn_cuMemFree_v2)(CUdeviceptr dptr);
typedef CUresult (*tr_pfn_cuMemGetInfo_v2)(size_t *free, size_t *total);
typedef CUresult (*tr_pfn_cuMemcpyHtoDAsync_v2)(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream);
typedef CUresult (*tr_pfn_cuMemcpyDtoHAsync_v2)(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream);
typedef CUresult (*tr_pfn_cuMemcpyDtoDAsync_v2)(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream);
typedef CUresult (*tr_pfn_cuMemsetD32Async)(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream);
typedef CUresult (*tr_pfn_cuMemsetD8Async)(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream);
typedef CUresult (*tr_pfn_cuMemHostAlloc)(void **pp, size_t bytesize, unsigned int Flags);
typedef CUresult (*tr_pfn_cuMemFreeHost)(void *p);
typedef CUresult (*tr_pfn_cuStreamCreate)(CUstream *phStream, unsigned int Flags);
typedef CUresult (*tr_pfn_cuStreamSynchronize)(CUstream hStream);
typedef CUresult (*tr_pfn_cuStreamDestroy_v2)(CUstream hStream);
typedef CUresult (*tr_pfn_cuModuleLoadDataEx)(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options, void **optionValues);
typedef CUresult (*tr_pfn_cuModuleGetFunction)(CUfunction *hfunc, CUmodule hmod, const char *name);
typedef CUresult (*tr_pfn_cuModuleUnload)(CUmodule hmod);
typedef CUresult (*tr_pfn_cuLaunchKernel)(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra);
typedef CUresult (*tr_pfn_cuEventCreate)(CUevent *phEvent, unsigned int Flags);
typedef CUresult (*tr_pfn_cuEventRecord)(CUevent hEvent, CUstream hStream);
typedef CUresult (*tr_pfn_cuEventSynchronize)(CUevent hEvent);
typedef CUresult (*tr_pfn_cuEventElapsedTime)(float *pMilliseconds, CUevent hStart, CUevent hEnd);
typedef CUresult (*tr_pfn_cuEventDestroy_v2)(CUevent hEvent);
typedef CUresult (*tr_pfn_cuGetErrorName)(CUresult error, const char **pStr);
typedef CUresult (*tr_pfn_cuGetErrorString)(CUresult error, const char **pStr);

/* Field names are the exported symbol names; cuda_cgo.go resolves each. */
typedef struct {
	void *cuInit, *cuDriverGetVersion, *cuDeviceGetCount, *cuDeviceGet,
	    *cuDeviceGetName, *cuDeviceGetAttribute, *cuDeviceTotalMem_v2,
	    *cuDevicePrimaryCtxRetain, *cuDevicePrimaryCtxRelease_v2,
	    *cuCtxSetCurrent, *cuCtxSynchronize, *cuMemAlloc_v2, *cuMemFree_v2,
	    *cuMemGetInfo_v2, *cuMemcpyHtoDAsync_v2, *cuMemcpyDtoHAsync_v2,
	    *cuMemcpyDtoDAsync_v2, *cuMemsetD32Async, *cuMemsetD8Async,
	    *cuMemHostAlloc, *cuMemFreeHost, *cuStreamCreate,
	    *cuStreamSynchronize, *cuStreamDestroy_v2, *cuModuleLoadDataEx,
	    *cuModuleGetFunction, *cuModuleUnload, *cuLaunchKernel,
	    *cuEventCreate, *cuEventRecord, *cuEventSynchronize,
	    *cuEventElapsedTime, *cuEventDestroy_v2, *cuGetErrorName,
	    *cuGetErrorString;
} tr_cu_api;

/* ---- CUDA graphs: optional driver entry points ----
 * Resolved when present and never required: a driver without them (older
 * than CUDA 11.0, or without cuGraphInstantiateWithFlags before 11.4, which
 * then uses cuGraphInstantiate_v2) still runs everything, eagerly. A NULL
 * slot means the symbol is missing. */
typedef CUresult (*tr_pfn_cuStreamBeginCapture_v2)(CUstream hStream, CUstreamCaptureMode mode);
typedef CUresult (*tr_pfn_cuStreamEndCapture)(CUstream hStream, CUgraph *phGraph);
typedef CUresult (*tr_pfn_cuGraphInstantiateWithFlags)(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags);
typedef CUresult (*tr_pfn_cuGraphInstantiate_v2)(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize);
typedef CUresult (*tr_pfn_cuGraphLaunch)(CUgraphExec hGraphExec, CUstream hStream);
typedef CUresult (*tr_pfn_cuGraphExecDestroy)(CUgraphExec hGraphExec);
typedef CUresult (*tr_pfn_cuGraphDestroy)(CUgraph hGraph);

typedef struct {
	void *cuStreamBeginCapture_v2, *cuStreamEndCapture,
	    *cuGraphInstantiateWithFlags, *cuGraphInstantiate_v2, *cuGraphLaunch,
	    *cuGraphExecDestroy, *cuGraphDestroy;
} tr_cu_graph_api;

/* ---- cuBLAS (libcublas.so.N) ---- */
typedef cublasStatus_t (*tr_pfn_cublasCreate_v2)(cublasHandle_t *handle);
typedef cublasStatus_t (*tr_pfn_cublasDestroy_v2)(cublasHandle_t handle);
typedef cublasStatus_t (*tr_pfn_cublasSetStream_v2)(cublasHandle_t handle, cudaStream_t streamId);
typedef cublasStatus_t (*tr_pfn_cublasSetMathMode)(cublasHandle_t handle, cublasMath_t mode);
typedef cublasStatus_t (*tr_pfn_cublasGetVersion_v2)(cublasHandle_t handle, int *version);
typedef cublasStatus_t (*tr_pfn_cublasGetProperty)(libraryPropertyType type, int *value);
typedef cublasStatus_t (*tr_pfn_cublasSgemm_v2)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc);
typedef cublasStatus_t (*tr_pfn_cublasSgemmStridedBatched)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const float *alpha, const float *A, int lda, long long int strideA, const float *B, int ldb, long long int strideB, const float *beta, float *C, int ldc, long long int strideC, int batchCount);

/* cuBLAS 11.0+ (cublasComputeType_t): every cuBLAS this package loads has it. */
typedef cublasStatus_t (*tr_pfn_cublasGemmEx)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType, cublasGemmAlgo_t algo);

typedef struct {
	void *cublasCreate_v2, *cublasDestroy_v2, *cublasSetStream_v2,
	    *cublasSetMathMode, *cublasGetVersion_v2, *cublasGetProperty,
	    *cublasSgemm_v2, *cublasSgemmStridedBatched, *cublasGemmEx;
} tr_blas_api;

/* Optional cuBLAS entry points (cuBLAS 11.0 and newer have them): the
 * workspace a handle uses, set before a graph capture so that cuBLAS does
 * not allocate one inside it. */
typedef cublasStatus_t (*tr_pfn_cublasSetWorkspace_v2)(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes);

typedef struct {
	void *cublasSetWorkspace_v2;
} tr_blas_opt_api;

/* Defined once, in cuda_cgo.go; written only when a load fully succeeded. */
extern tr_cu_api tr_cu;
extern tr_cu_graph_api tr_cug;
extern tr_blas_api tr_blas;
extern tr_blas_opt_api tr_blaso;

#define TR_CU(fn) ((tr_pfn_##fn)tr_cu.fn)
#define TR_CUG(fn) ((tr_pfn_##fn)tr_cug.fn)
#define TR_BLAS(fn) ((tr_pfn_##fn)tr_blas.fn)
#define TR_BLASO(fn) ((tr_pfn_##fn)tr_blaso.fn)

/* Makes ctx current on this thread; ctx NULL means: leave it as it is. */
static inline CUresult tr_setcur(CUcontext ctx) {
	return ctx ? TR_CU(cuCtxSetCurrent)(ctx) : 0;
}

/* ---- driver shims ---- */
static inline CUresult tr_cuInit(unsigned int flags) { return TR_CU(cuInit)(flags); }
static inline CUresult tr_cuDriverGetVersion(int *v) { return TR_CU(cuDriverGetVersion)(v); }
static inline CUresult tr_cuDeviceGetCount(int *n) { return TR_CU(cuDeviceGetCount)(n); }
static inline CUresult tr_cuDeviceGet(CUdevice *d, int ordinal) { return TR_CU(cuDeviceGet)(d, ordinal); }
static inline CUresult tr_cuDeviceGetName(char *name, int len, CUdevice d) { return TR_CU(cuDeviceGetName)(name, len, d); }
static inline CUresult tr_cuDeviceGetAttribute(int *v, int attr, CUdevice d) { return TR_CU(cuDeviceGetAttribute)(v, (CUdevice_attribute)attr, d); }
static inline CUresult tr_cuDeviceTotalMem(size_t *b, CUdevice d) { return TR_CU(cuDeviceTotalMem_v2)(b, d); }
static inline CUresult tr_cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { return TR_CU(cuDevicePrimaryCtxRetain)(c, d); }
static inline CUresult tr_cuDevicePrimaryCtxRelease(CUdevice d) { return TR_CU(cuDevicePrimaryCtxRelease_v2)(d); }
static inline CUresult tr_cuCtxSetCurrent(CUcontext c) { return TR_CU(cuCtxSetCurrent)(c); }

static inline CUresult tr_cuCtxSynchronize(CUcontext c) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuCtxSynchronize)();
}
static inline CUresult tr_cuMemAlloc(CUcontext c, CUdeviceptr *p, size_t n) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemAlloc_v2)(p, n);
}
static inline CUresult tr_cuMemFree(CUcontext c, CUdeviceptr p) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemFree_v2)(p);
}
static inline CUresult tr_cuMemGetInfo(CUcontext c, size_t *free, size_t *total) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemGetInfo_v2)(free, total);
}
static inline CUresult tr_cuMemcpyHtoDAsync(CUcontext c, CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemcpyHtoDAsync_v2)(dst, src, n, s);
}
static inline CUresult tr_cuMemcpyDtoHAsync(CUcontext c, void *dst, CUdeviceptr src, size_t n, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemcpyDtoHAsync_v2)(dst, src, n, s);
}
static inline CUresult tr_cuMemcpyDtoDAsync(CUcontext c, CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemcpyDtoDAsync_v2)(dst, src, n, s);
}
static inline CUresult tr_cuMemsetD32Async(CUcontext c, CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemsetD32Async)(dst, v, n, s);
}
static inline CUresult tr_cuMemsetD8Async(CUcontext c, CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemsetD8Async)(dst, v, n, s);
}
static inline CUresult tr_cuMemHostAlloc(CUcontext c, void **p, size_t n, unsigned int flags) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemHostAlloc)(p, n, flags);
}
static inline CUresult tr_cuMemFreeHost(CUcontext c, void *p) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuMemFreeHost)(p);
}
static inline CUresult tr_cuStreamCreate(CUcontext c, CUstream *s, unsigned int flags) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuStreamCreate)(s, flags);
}
static inline CUresult tr_cuStreamSynchronize(CUcontext c, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuStreamSynchronize)(s);
}
static inline CUresult tr_cuStreamDestroy(CUcontext c, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuStreamDestroy_v2)(s);
}

/* Loads a NUL-terminated PTX (or cubin/fatbin) image and captures the JIT
 * logs into the caller's buffers; *errlen and *infolen get the bytes written. */
static inline CUresult tr_cuModuleLoadDataEx(CUcontext c, CUmodule *m, const void *image,
    char *errbuf, size_t *errlen, char *infobuf, size_t *infolen) {
	CUresult r = tr_setcur(c);
	if (r) return r;
	/* CU_JIT_INFO_LOG_BUFFER=3, _SIZE_BYTES=4, CU_JIT_ERROR_LOG_BUFFER=5, _SIZE_BYTES=6 */
	CUjit_option opts[4] = {(CUjit_option)5, (CUjit_option)6, (CUjit_option)3, (CUjit_option)4};
	void *vals[4] = {errbuf, (void *)*errlen, infobuf, (void *)*infolen};
	errbuf[0] = 0;
	infobuf[0] = 0;
	r = TR_CU(cuModuleLoadDataEx)(m, image, 4, opts, vals);
	/* On return the size options hold the number of bytes written. */
	*errlen = (size_t)vals[1];
	*infolen = (size_t)vals[3];
	return r;
}
static inline CUresult tr_cuModuleGetFunction(CUcontext c, CUfunction *f, CUmodule m, const char *name) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuModuleGetFunction)(f, m, name);
}
static inline CUresult tr_cuModuleUnload(CUcontext c, CUmodule m) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuModuleUnload)(m);
}
static inline CUresult tr_cuLaunchKernel(CUcontext c, CUfunction f,
    unsigned int gx, unsigned int gy, unsigned int gz,
    unsigned int bx, unsigned int by, unsigned int bz,
    unsigned int shmem, CUstream s, void **params) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuLaunchKernel)(f, gx, gy, gz, bx, by, bz, shmem, s, params, NULL);
}
static inline CUresult tr_cuEventCreate(CUcontext c, CUevent *e, unsigned int flags) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuEventCreate)(e, flags);
}
static inline CUresult tr_cuEventRecord(CUcontext c, CUevent e, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuEventRecord)(e, s);
}
static inline CUresult tr_cuEventSynchronize(CUcontext c, CUevent e) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuEventSynchronize)(e);
}
static inline CUresult tr_cuEventElapsedTime(CUcontext c, float *ms, CUevent start, CUevent end) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuEventElapsedTime)(ms, start, end);
}
static inline CUresult tr_cuEventDestroy(CUcontext c, CUevent e) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CU(cuEventDestroy_v2)(e);
}
/* Both return NULL when the code is unknown or the driver is not loaded. */
static inline const char *tr_cuGetErrorName(CUresult code) {
	const char *s = NULL;
	if (!tr_cu.cuGetErrorName || TR_CU(cuGetErrorName)(code, &s) != 0) return NULL;
	return s;
}
static inline const char *tr_cuGetErrorString(CUresult code) {
	const char *s = NULL;
	if (!tr_cu.cuGetErrorString || TR_CU(cuGetErrorString)(code, &s) != 0) return NULL;
	return s;
}

/* ---- graph shims (the caller checks that the slots are set) ---- */
static inline CUresult tr_cuStreamBeginCapture(CUcontext c, CUstream s, int mode) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CUG(cuStreamBeginCapture_v2)(s, (CUstreamCaptureMode)mode);
}
static inline CUresult tr_cuStreamEndCapture(CUcontext c, CUstream s, CUgraph *g) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CUG(cuStreamEndCapture)(s, g);
}
/* cuGraphInstantiateWithFlags (CUDA 11.4+) with no flags, or on an older
 * driver cuGraphInstantiate_v2 (CUDA 11.0+) with its log in log[0..loglen). */
static inline CUresult tr_cuGraphInstantiate(CUcontext c, CUgraphExec *e, CUgraph g, char *log, size_t loglen) {
	CUresult r = tr_setcur(c);
	if (r) return r;
	log[0] = 0;
	if (tr_cug.cuGraphInstantiateWithFlags) return TR_CUG(cuGraphInstantiateWithFlags)(e, g, 0);
	return TR_CUG(cuGraphInstantiate_v2)(e, g, NULL, log, loglen);
}
static inline CUresult tr_cuGraphLaunch(CUcontext c, CUgraphExec e, CUstream s) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CUG(cuGraphLaunch)(e, s);
}
static inline CUresult tr_cuGraphExecDestroy(CUcontext c, CUgraphExec e) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CUG(cuGraphExecDestroy)(e);
}
static inline CUresult tr_cuGraphDestroy(CUcontext c, CUgraph g) {
	CUresult r = tr_setcur(c);
	return r ? r : TR_CUG(cuGraphDestroy)(g);
}

/* ---- cuBLAS shims ----
 * Those that need the context return an int: the cuBLAS status, or minus the
 * CUresult when making the context current failed (both are >= 0), so no Go
 * pointer is needed for a second result. */
static inline int tr_cublasCreate(CUcontext c, cublasHandle_t *h) {
	CUresult r = tr_setcur(c);
	return r ? -(int)r : (int)TR_BLAS(cublasCreate_v2)(h);
}
static inline int tr_cublasDestroy(CUcontext c, cublasHandle_t h) {
	tr_setcur(c); /* best effort: the handle is destroyed either way */
	return (int)TR_BLAS(cublasDestroy_v2)(h);
}
static inline int tr_cublasSetStream(cublasHandle_t h, CUstream s) { return (int)TR_BLAS(cublasSetStream_v2)(h, s); }
static inline int tr_cublasSetMathMode(cublasHandle_t h, int mode) { return (int)TR_BLAS(cublasSetMathMode)(h, (cublasMath_t)mode); }
static inline int tr_cublasGetVersion(cublasHandle_t h, int *v) { return (int)TR_BLAS(cublasGetVersion_v2)(h, v); }
static inline int tr_cublasGetProperty(int type, int *v) { return (int)TR_BLAS(cublasGetProperty)((libraryPropertyType)type, v); }
static inline int tr_cublasSetWorkspace(CUcontext c, cublasHandle_t h, CUdeviceptr p, size_t n) {
	CUresult r = tr_setcur(c);
	return r ? -(int)r : (int)TR_BLASO(cublasSetWorkspace_v2)(h, (void *)p, n);
}

/* alpha and beta arrive by value and are passed as pointers to these C
 * locals: in the default CUBLAS_POINTER_MODE_HOST cuBLAS reads them before it
 * returns, and no Go pointer crosses into C (so no allocation per call). */
static inline int tr_cublasSgemm(CUcontext c, cublasHandle_t h,
    int ta, int tb, int m, int n, int k, float alpha,
    CUdeviceptr A, int lda, CUdeviceptr B, int ldb, float beta, CUdeviceptr C, int ldc) {
	CUresult r = tr_setcur(c);
	if (r) return -(int)r;
	return (int)TR_BLAS(cublasSgemm_v2)(h, (cublasOperation_t)ta, (cublasOperation_t)tb, m, n, k,
	    &alpha, (const float *)A, lda, (const float *)B, ldb, &beta, (float *)C, ldc);
}
/* alpha and beta are float: the scale type of CUBLAS_COMPUTE_32F. */
static inline int tr_cublasGemmEx(CUcontext c, cublasHandle_t h,
    int ta, int tb, int m, int n, int k, float alpha,
    CUdeviceptr A, int atype, int lda, CUdeviceptr B, int btype, int ldb,
    float beta, CUdeviceptr C, int ctype, int ldc, int compute, int algo) {
	CUresult r = tr_setcur(c);
	if (r) return -(int)r;
	return (int)TR_BLAS(cublasGemmEx)(h, (cublasOperation_t)ta, (cublasOperation_t)tb, m, n, k,
	    &alpha, (const void *)A, (cudaDataType)atype, lda, (const void *)B, (cudaDataType)btype, ldb,
	    &beta, (void *)C, (cudaDataType)ctype, ldc, (cublasComputeType_t)compute, (cublasGemmAlgo_t)algo);
}
static inline int tr_cublasSgemmStridedBatched(CUcontext c, cublasHandle_t h,
    int ta, int tb, int m, int n, int k, float alpha,
    CUdeviceptr A, int lda, long long sA, CUdeviceptr B, int ldb, long long sB,
    float beta, CUdeviceptr C, int ldc, long long sC, int batch) {
	CUresult r = tr_setcur(c);
	if (r) return -(int)r;
	return (int)TR_BLAS(cublasSgemmStridedBatched)(h, (cublasOperation_t)ta, (cublasOperation_t)tb, m, n, k,
	    &alpha, (const float *)A, lda, sA, (const float *)B, ldb, sB, &beta, (float *)C, ldc, sC, batch);
}

#endif /* TRAINER_CUDA_API_H */
