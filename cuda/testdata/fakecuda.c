/*
 * A fake CUDA driver library for the tests of package cuda (fake_test.go):
 * the entry points the package loads, implemented on the host. "Device"
 * pointers are host pointers, work runs synchronously, and the one kernel,
 * vadd, is a C loop that reads its arguments through kernelParams exactly as
 * the driver would. It checks what a real driver checks and the package must
 * get right: a current context on the calling thread, valid handles, the
 * JIT option list, the launch configuration.
 *
 * Written from the CUDA driver API documentation with plain C types, on
 * purpose not sharing api.h. Environment: FAKE_CUDA_DEVICES (default 1),
 * FAKE_CUDA_INIT_ERROR (a CUresult cuInit returns), FAKE_CUDA_DRIVER_VERSION
 * (what cuDriverGetVersion reports, default 12040).
 *
 * Stream capture and graphs: a capturing stream records each vadd launch
 * with a copy of its argument values (the kernel reads the memory they
 * point at only when a graph instance is launched); a synchronisation on it
 * fails and invalidates the capture, as on CUDA, and EndCapture must come
 * from the thread that began it. Only launches are recorded: copies, memsets
 * and events on a capturing stream fail too (CUDA would capture the
 * device-side ones as nodes; the package relies on none of them). Compiled with -DFAKE_NO_GRAPHS the library
 * has no graph entry points (a driver older than CUDA 11.0), with
 * -DFAKE_OLD_GRAPHS no cuGraphInstantiateWithFlags (CUDA 11.0 to 11.3).
 *
 * Build: gcc -shared -fPIC -o libfakecuda.so fakecuda.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

typedef int CUresult;
enum {
	OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_INITIALIZED = 3,
	INVALID_DEVICE = 101, INVALID_CONTEXT = 201, INVALID_PTX = 218,
	INVALID_HANDLE = 400, ILLEGAL_STATE = 401, NOT_FOUND = 500,
	CAPTURE_UNSUPPORTED = 900, CAPTURE_INVALIDATED = 901, CAPTURE_WRONG_THREAD = 908,
};
#define MAGIC_CTX 0x43545821u
#define MAGIC_STREAM 0x53545245u
#define MAGIC_EVENT 0x4556454eu
#define MAGIC_MODULE 0x4d4f4455u
#define MAGIC_FUNC 0x46554e43u
#define MAGIC_GRAPH 0x47524150u
#define MAGIC_EXEC 0x47455845u

/* One recorded vadd launch: its argument values and thread count. */
struct rec { float *a, *b, *c; unsigned n; float scale; unsigned long long threads; };
struct recs { struct rec *r; int n, cap; };

struct ctx { unsigned magic; int dev; int refs; };
struct stream {
	unsigned magic; struct ctx *ctx;
	int capturing, invalid; /* a capture is under way; something invalidated it */
	void *thread;           /* the thread that began it */
	struct recs recs;
};
struct graph { unsigned magic; struct recs recs; };
struct event { unsigned magic; double t; int recorded; };
struct module { unsigned magic; };
struct func { unsigned magic; };

static int inited;
static struct ctx ctxs[8];
static __thread struct ctx *cur; /* the current context is per thread */
static struct func vadd_func = {MAGIC_FUNC};

static int ndev(void) {
	const char *s = getenv("FAKE_CUDA_DEVICES");
	int n = s ? atoi(s) : 1;
	return n < 0 ? 0 : n > 8 ? 8 : n;
}
/* Device handles are 100 + ordinal, so a caller confusing them is caught. */
static int devok(int d) { return d >= 100 && d < 100 + ndev(); }
#define NEED_INIT() do { if (!inited) return NOT_INITIALIZED; } while (0)
#define NEED_CTX() do { NEED_INIT(); if (!cur || cur->magic != MAGIC_CTX || cur->refs <= 0) return INVALID_CONTEXT; } while (0)
#define NEED_STREAM(s) do { if ((s) && ((struct stream *)(s))->magic != MAGIC_STREAM) return INVALID_HANDLE; } while (0)
/* Work that cannot be captured: on a capturing stream it invalidates the capture. */
#define NO_CAPTURE(s) do { if ((s) && ((struct stream *)(s))->capturing) { ((struct stream *)(s))->invalid = 1; return CAPTURE_UNSUPPORTED; } } while (0)

static void rec_add(struct recs *l, struct rec r) {
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->r = realloc(l->r, l->cap * sizeof *l->r);
	}
	l->r[l->n++] = r;
}
static void vadd_run(const struct rec *r) {
	for (unsigned long long i = 0; i < r->threads && i < r->n; i++) r->c[i] = (r->a[i] + r->b[i]) * r->scale;
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

CUresult cuInit(unsigned int flags) {
	const char *e = getenv("FAKE_CUDA_INIT_ERROR");
	if (flags != 0) return INVALID_VALUE;
	if (e && atoi(e)) return atoi(e);
	inited = 1;
	return OK;
}
/* FAKE_CUDA_DRIVER_VERSION: the CUDA version the fake driver supports (default 12040). */
CUresult cuDriverGetVersion(int *v) {
	const char *s = getenv("FAKE_CUDA_DRIVER_VERSION");
	if (!v) return INVALID_VALUE;
	*v = s ? atoi(s) : 12040;
	return OK;
}
CUresult cuDeviceGetCount(int *n) { NEED_INIT(); *n = ndev(); return OK; }
CUresult cuDeviceGet(int *d, int ordinal) {
	NEED_INIT();
	if (ordinal < 0 || ordinal >= ndev()) return INVALID_DEVICE;
	*d = 100 + ordinal;
	return OK;
}
CUresult cuDeviceGetName(char *name, int len, int d) {
	NEED_INIT();
	if (!devok(d)) return INVALID_DEVICE;
	snprintf(name, len, "Fake GPU %d", d - 100);
	return OK;
}
CUresult cuDeviceGetAttribute(int *v, int attr, int d) {
	NEED_INIT();
	if (!devok(d)) return INVALID_DEVICE;
	switch (attr) {
	case 16: *v = 4; return OK;  /* MULTIPROCESSOR_COUNT */
	case 75: *v = 9; return OK;  /* COMPUTE_CAPABILITY_MAJOR */
	case 76: *v = 0; return OK;  /* COMPUTE_CAPABILITY_MINOR */
	}
	return INVALID_VALUE;
}
CUresult cuDeviceTotalMem_v2(size_t *b, int d) {
	NEED_INIT();
	if (!devok(d)) return INVALID_DEVICE;
	*b = (size_t)1 << 32;
	return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **pctx, int d) {
	NEED_INIT();
	if (!devok(d)) return INVALID_DEVICE;
	struct ctx *c = &ctxs[d - 100];
	c->magic = MAGIC_CTX;
	c->dev = d;
	c->refs++;
	*pctx = c;
	return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int d) {
	NEED_INIT();
	if (!devok(d) || ctxs[d - 100].refs <= 0) return INVALID_CONTEXT;
	ctxs[d - 100].refs--;
	return OK;
}
CUresult cuCtxSetCurrent(void *c) {
	NEED_INIT();
	if (c && ((struct ctx *)c)->magic != MAGIC_CTX) return INVALID_CONTEXT;
	cur = c;
	return OK;
}
CUresult cuCtxSynchronize(void) { NEED_CTX(); return OK; }

CUresult cuMemAlloc_v2(unsigned long long *p, size_t n) {
	NEED_CTX();
	if (n == 0) return INVALID_VALUE;
	if (n > ((size_t)1 << 32)) return OUT_OF_MEMORY;
	void *m = NULL; /* aligned like CUDA's allocations (at least 256 bytes) */
	if (posix_memalign(&m, 256, n) != 0) return OUT_OF_MEMORY;
	*p = (unsigned long long)(uintptr_t)m;
	return OK;
}
CUresult cuMemFree_v2(unsigned long long p) { NEED_CTX(); free((void *)(uintptr_t)p); return OK; }
CUresult cuMemGetInfo_v2(size_t *free_, size_t *total) {
	NEED_CTX();
	*free_ = (size_t)3 << 30;
	*total = (size_t)1 << 32;
	return OK;
}
CUresult cuMemcpyHtoDAsync_v2(unsigned long long dst, const void *src, size_t n, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	memcpy((void *)(uintptr_t)dst, src, n);
	return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t n, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	memcpy(dst, (void *)(uintptr_t)src, n);
	return OK;
}
CUresult cuMemcpyDtoDAsync_v2(unsigned long long dst, unsigned long long src, size_t n, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n);
	return OK;
}
CUresult cuMemsetD32Async(unsigned long long dst, unsigned int v, size_t n, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	unsigned int *p = (unsigned int *)(uintptr_t)dst;
	for (size_t i = 0; i < n; i++) p[i] = v;
	return OK;
}
CUresult cuMemsetD8Async(unsigned long long dst, unsigned char v, size_t n, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	memset((void *)(uintptr_t)dst, v, n);
	return OK;
}
CUresult cuMemHostAlloc(void **p, size_t n, unsigned int flags) {
	NEED_CTX();
	if (flags > 7) return INVALID_VALUE;
	*p = malloc(n);
	return *p ? OK : OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *p) { NEED_CTX(); free(p); return OK; }

CUresult cuStreamCreate(void **s, unsigned int flags) {
	NEED_CTX();
	if (flags > 1) return INVALID_VALUE;
	struct stream *st = calloc(1, sizeof *st);
	st->magic = MAGIC_STREAM;
	st->ctx = cur;
	*s = st;
	return OK;
}
CUresult cuStreamSynchronize(void *s) { NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s); return OK; }
CUresult cuStreamDestroy_v2(void *s) {
	NEED_CTX();
	if (!s) return INVALID_HANDLE;
	NEED_STREAM(s);
	((struct stream *)s)->magic = 0;
	free(((struct stream *)s)->recs.r);
	free(s);
	return OK;
}

/* Options: CU_JIT_INFO_LOG_BUFFER=3, _SIZE_BYTES=4, CU_JIT_ERROR_LOG_BUFFER=5, _SIZE_BYTES=6. */
CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned int nopt, int *opts, void **vals) {
	NEED_CTX();
	char *errbuf = NULL;
	size_t errsize = 0;
	int errsize_at = -1;
	for (unsigned int i = 0; i < nopt; i++) {
		switch (opts[i]) {
		case 3: case 4: break;
		case 5: errbuf = vals[i]; break;
		case 6: errsize = (size_t)(uintptr_t)vals[i]; errsize_at = i; break;
		default: return INVALID_VALUE;
		}
	}
	const char *ptx = image;
	if (!ptx || !strstr(ptx, ".version")) return INVALID_PTX;
	const char *bad = strstr(ptx, "this_is_not_an_instruction");
	if (bad || !strstr(ptx, ".entry")) {
		if (errbuf && errsize > 0) {
			int n = snprintf(errbuf, errsize, "ptxas application ptx input, line 7; error   : Not a name of any known instruction: '%s'",
			    bad ? "this_is_not_an_instruction" : "?");
			if (errsize_at >= 0) vals[errsize_at] = (void *)(uintptr_t)((size_t)n < errsize ? (size_t)n + 1 : errsize);
		}
		return INVALID_PTX;
	}
	struct module *mod = malloc(sizeof *mod);
	mod->magic = MAGIC_MODULE;
	*m = mod;
	return OK;
}
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
	NEED_CTX();
	if (!m || ((struct module *)m)->magic != MAGIC_MODULE) return INVALID_HANDLE;
	if (strcmp(name, "vadd") != 0) return NOT_FOUND;
	*f = &vadd_func;
	return OK;
}
CUresult cuModuleUnload(void *m) {
	NEED_CTX();
	if (!m || ((struct module *)m)->magic != MAGIC_MODULE) return INVALID_HANDLE;
	((struct module *)m)->magic = 0;
	free(m);
	return OK;
}
/* vadd(float *a, float *b, float *c, unsigned n, float scale): c[i] = (a[i] + b[i]) * scale. */
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned shmem, void *s, void **params, void **extra) {
	NEED_CTX(); NEED_STREAM(s);
	if (f != &vadd_func) return INVALID_HANDLE;
	if (!gx || !gy || !gz || !bx || !by || !bz || (unsigned long long)bx * by * bz > 1024 || shmem > 48 * 1024) return INVALID_VALUE;
	if (extra || !params) return INVALID_VALUE;
	struct rec r = {*(float **)params[0], *(float **)params[1], *(float **)params[2],
	    *(unsigned *)params[3], *(float *)params[4], (unsigned long long)gx * bx};
	if (s && ((struct stream *)s)->capturing) {
		rec_add(&((struct stream *)s)->recs, r); /* the values, as they are now */
		return OK;
	}
	vadd_run(&r);
	return OK;
}
CUresult cuEventCreate(void **e, unsigned int flags) {
	NEED_CTX();
	if (flags > 15) return INVALID_VALUE;
	struct event *ev = calloc(1, sizeof *ev);
	ev->magic = MAGIC_EVENT;
	*e = ev;
	return OK;
}
CUresult cuEventRecord(void *e, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	if (!e || ((struct event *)e)->magic != MAGIC_EVENT) return INVALID_HANDLE;
	((struct event *)e)->t = now_ms();
	((struct event *)e)->recorded = 1;
	return OK;
}
CUresult cuEventSynchronize(void *e) {
	NEED_CTX();
	if (!e || ((struct event *)e)->magic != MAGIC_EVENT) return INVALID_HANDLE;
	return OK;
}
CUresult cuEventElapsedTime(float *ms, void *a, void *b) {
	NEED_CTX();
	struct event *s = a, *e = b;
	if (!s || !e || s->magic != MAGIC_EVENT || e->magic != MAGIC_EVENT) return INVALID_HANDLE;
	if (!s->recorded || !e->recorded) return INVALID_HANDLE;
	*ms = (float)(e->t - s->t);
	return OK;
}
CUresult cuEventDestroy_v2(void *e) {
	NEED_CTX();
	if (!e || ((struct event *)e)->magic != MAGIC_EVENT) return INVALID_HANDLE;
	((struct event *)e)->magic = 0;
	free(e);
	return OK;
}
#ifndef FAKE_NO_GRAPHS
static __thread char thread_id; /* its address names the calling thread */

/* mode: GLOBAL=0, THREAD_LOCAL=1, RELAXED=2. The legacy stream cannot capture. */
CUresult cuStreamBeginCapture_v2(void *s, int mode) {
	NEED_CTX(); NEED_STREAM(s);
	if (mode < 0 || mode > 2) return INVALID_VALUE;
	if (!s) return CAPTURE_UNSUPPORTED;
	struct stream *st = s;
	if (st->capturing) return ILLEGAL_STATE;
	st->capturing = 1;
	st->invalid = 0;
	st->thread = mode == 2 ? NULL : &thread_id;
	st->recs.n = 0;
	return OK;
}
CUresult cuStreamEndCapture(void *s, void **g) {
	NEED_CTX(); NEED_STREAM(s);
	struct stream *st = s;
	if (!st || !g) return INVALID_VALUE;
	if (!st->capturing) return ILLEGAL_STATE;
	if (st->thread && st->thread != &thread_id) return CAPTURE_WRONG_THREAD;
	st->capturing = 0;
	*g = NULL;
	if (st->invalid) return CAPTURE_INVALIDATED;
	struct graph *gr = calloc(1, sizeof *gr);
	gr->magic = MAGIC_GRAPH;
	gr->recs = st->recs; /* the graph takes the list */
	st->recs = (struct recs){0};
	*g = gr;
	return OK;
}
static CUresult instantiate(void **e, void *g) {
	NEED_CTX();
	struct graph *gr = g;
	if (!e || !gr || gr->magic != MAGIC_GRAPH) return INVALID_VALUE;
	struct graph *ex = calloc(1, sizeof *ex); /* a copy: independent of the graph */
	ex->magic = MAGIC_EXEC;
	ex->recs.n = ex->recs.cap = gr->recs.n;
	ex->recs.r = malloc((gr->recs.n + 1) * sizeof *ex->recs.r);
	memcpy(ex->recs.r, gr->recs.r, gr->recs.n * sizeof *ex->recs.r);
	*e = ex;
	return OK;
}
#ifndef FAKE_OLD_GRAPHS
CUresult cuGraphInstantiateWithFlags(void **e, void *g, unsigned long long flags) {
	if (flags > 15) return INVALID_VALUE;
	return instantiate(e, g);
}
#endif
CUresult cuGraphInstantiate_v2(void **e, void *g, void **errNode, char *log, size_t loglen) {
	if (errNode) *errNode = NULL;
	if (log && loglen) log[0] = 0;
	return instantiate(e, g);
}
CUresult cuGraphLaunch(void *e, void *s) {
	NEED_CTX(); NEED_STREAM(s); NO_CAPTURE(s);
	struct graph *ex = e;
	if (!ex || ex->magic != MAGIC_EXEC) return INVALID_HANDLE;
	for (int i = 0; i < ex->recs.n; i++) vadd_run(&ex->recs.r[i]);
	return OK;
}
static CUresult destroy(void *g, unsigned magic) {
	NEED_CTX();
	struct graph *gr = g;
	if (!gr || gr->magic != magic) return INVALID_VALUE;
	gr->magic = 0;
	free(gr->recs.r);
	free(gr);
	return OK;
}
CUresult cuGraphExecDestroy(void *e) { return destroy(e, MAGIC_EXEC); }
CUresult cuGraphDestroy(void *g) { return destroy(g, MAGIC_GRAPH); }
#endif

/* Names only a few codes, like an old driver: the package's table does the rest. */
CUresult cuGetErrorName(CUresult code, const char **s) {
	switch (code) {
	case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return OK;
	case 100: *s = "CUDA_ERROR_NO_DEVICE"; return OK;
	}
	*s = NULL;
	return INVALID_VALUE;
}
CUresult cuGetErrorString(CUresult code, const char **s) {
	switch (code) {
	case OUT_OF_MEMORY: *s = "out of memory"; return OK;
	case 100: *s = "no CUDA-capable device is detected"; return OK;
	}
	*s = NULL;
	return INVALID_VALUE;
}
