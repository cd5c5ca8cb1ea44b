package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trainer-go/trainer/device"
)

// EnvLibNCCL names the NCCL library to load instead of libnccl.so.2.
const EnvLibNCCL = "TRAINER_LIBNCCL"

// ncclIDBytes is the size of ncclUniqueId.
const ncclIDBytes = 128

// ncclAvgVersion is the first NCCL with ncclAvg (2.10.0).
const ncclAvgVersion = 21000

func ncclNames() []string {
	if p := os.Getenv(EnvLibNCCL); p != "" {
		return []string{p}
	}
	return []string{"libnccl.so.2", "libnccl.so"}
}

// NCCLLoadError says why NCCL could not be loaded.
type NCCLLoadError struct {
	Tried, Reasons []string
	Path, Symbol   string
}

func (e *NCCLLoadError) Error() string {
	if e.Symbol != "" {
		return fmt.Sprintf("%s is not a usable NCCL: it lacks %s: install NCCL 2.7 or newer, or fix %s", e.Path, e.Symbol, EnvLibNCCL)
	}
	return fmt.Sprintf("NCCL was not found (tried %s: %s): install it (NVIDIA's apt repository: apt-get install libnccl2; pip: pip install nvidia-nccl-cu12, then set %s to the libnccl.so.2 in its nvidia/nccl/lib folder; PyTorch's wheels bundle the same file)",
		strings.Join(e.Tried, ", "), strings.Join(e.Reasons, "; "), EnvLibNCCL)
}

// VersionString formats NCCL_VERSION_CODE (21003 -> 2.10.3; before 2.9,
// 2708 -> 2.7.8).
func NCCLVersionString(v int) string {
	if v < 20900 {
		return fmt.Sprintf("%d.%d.%d", v/1000, v%1000/100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/10000, v%10000/100, v%100)
}

// GPUIndex is the GPU a rank uses: its local rank, modulo the GPUs it can
// see (a launcher that gives each rank one GPU makes it the only visible
// one; several ranks on one GPU need NCCL_MULTI_RANK_GPU_ENABLE=1, NCCL
// 2.30 and newer).
func GPUIndex(localRank, visible int) int {
	if visible <= 0 {
		return 0
	}
	return localRank % visible
}

// CommID is how the ranks find each other without MPI: NCCL's own
// bootstrap at NCCL_COMM_ID=host:port, which rank 0 listens on. Under
// torchrun it defaults to MASTER_ADDR and MASTER_PORT+1 (torchrun's store
// holds MASTER_PORT itself); under srun it must be set.
func CommID(l Launch, lookup func(string) (string, bool)) (string, error) {
	if v, ok := lookup("NCCL_COMM_ID"); ok && v != "" {
		if _, port, found := strings.Cut(v, ":"); !found || port == "" {
			return "", fmt.Errorf("NCCL_COMM_ID=%q: want host:port (rank 0's address and a free port)", v)
		}
		return v, nil
	}
	if l.MasterAddr != "" && l.MasterPort != "" {
		p, err := strconv.Atoi(l.MasterPort)
		if err != nil || p < 1 || p >= 65535 {
			return "", fmt.Errorf("MASTER_PORT=%q: want a port number", l.MasterPort)
		}
		return fmt.Sprintf("%s:%d", l.MasterAddr, p+1), nil
	}
	return "", fmt.Errorf("%s: NCCL's ranks need a meeting point: set NCCL_COMM_ID=host:port to rank 0's host and a free port (e.g. NCCL_COMM_ID=$(scontrol show hostnames | head -1):29600), or launch with mpirun", l)
}

// NCCL is a communicator over NCCL on one GPU per rank. Collectives are
// queued on the backend's stream; a watchdog polls NCCL's asynchronous
// error state and aborts the communicator (and the process, with a
// message) when a peer has failed, so that no rank waits for ever.
type NCCL struct {
	rank, size int
	version    int
	path       string
	comm       uintptr
	b          device.Backend
	nat        device.Native
	mpi        *Comm // the host flags go through MPI when there is one
	scratch    device.Buffer
	host       []float32
	stop       chan struct{}
	watching   sync.WaitGroup
}

// OpenNCCL makes the communicator of this rank on backend b (a GPU). With
// mpi set, rank 0's unique id reaches the others through it; without, each
// rank derives it from NCCL_COMM_ID (commID).
func OpenNCCL(l Launch, b device.Backend, mpi *Comm, commID string) (*NCCL, error) {
	nat, ok := b.(device.Native)
	if !ok || nat.StreamHandle() == 0 {
		return nil, fmt.Errorf("NCCL needs the GPU backend (--device gpu); data-parallel training on the CPU runs over MPI (mpirun)")
	}
	path, version, err := LoadNCCL()
	if err != nil {
		return nil, err
	}
	n := &NCCL{rank: l.Rank, size: l.Size, version: version, path: path, b: b, nat: nat, mpi: mpi, stop: make(chan struct{})}
	if commID != "" {
		os.Setenv("NCCL_COMM_ID", commID)
	}
	var id []byte
	if mpi == nil || l.Rank == 0 {
		if id, err = ncclUniqueID(); err != nil {
			return nil, err
		}
	} else {
		id = make([]byte, ncclIDBytes)
	}
	if mpi != nil {
		if err := mpi.BroadcastBytes(id); err != nil {
			return nil, err
		}
	}
	err = nat.WithContext(func() error {
		var err error
		n.comm, err = ncclInit(l.Size, id, l.Rank)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rank %d of %d on GPU %d: %w", l.Rank, l.Size, nat.DeviceIndex(), err)
	}
	if n.scratch, err = b.Alloc("collective flags", device.F32, 64); err != nil {
		return nil, err
	}
	n.watching.Add(1)
	go n.watch()
	return n, nil
}

// Describe is one line for the log.
func (n *NCCL) Describe() string {
	return fmt.Sprintf("NCCL %s rank %d of %d on GPU %d (%s)", NCCLVersionString(n.version), n.rank, n.size, n.nat.DeviceIndex(), n.path)
}

// Version is NCCL_VERSION_CODE.
func (n *NCCL) Version() int { return n.version }

// watch polls the asynchronous error state every second.
func (n *NCCL) watch() {
	defer n.watching.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if err := ncclAsyncError(n.comm); err != nil {
				fmt.Fprintf(os.Stderr, "trainer: error: rank %d: %v: a peer has failed or the network broke; aborting\n", n.rank, err)
				ncclAbort(n.comm)
				os.Exit(1)
			}
		}
	}
}

// Rank is this process's rank.
func (n *NCCL) Rank() int { return n.rank }

// Size is the number of ranks.
func (n *NCCL) Size() int { return n.size }

// AllReduce queues the sum (or mean) over the ranks of buf[:n] on the
// backend's stream, in place: ncclAvg where NCCL has it (2.10+), else a
// sum and a scale on the device.
func (n *NCCL) AllReduce(buf device.Buffer, cnt int, avg bool) error {
	op := ncclSum
	if avg && n.version >= ncclAvgVersion {
		op = ncclAvg
	}
	err := n.nat.WithContext(func() error {
		return ncclAllReduce(n.comm, n.nat.StreamHandle(), n.nat.Pointer(buf), cnt, op)
	})
	if err == nil && avg && op == ncclSum {
		n.b.Axpby(buf, buf, cnt, 1/float32(n.size), 0)
	}
	return err
}

// Broadcast queues rank 0's buf[:n] to every rank.
func (n *NCCL) Broadcast(buf device.Buffer, cnt int) error {
	return n.nat.WithContext(func() error {
		return ncclBroadcast(n.comm, n.nat.StreamHandle(), n.nat.Pointer(buf), cnt)
	})
}

// MaxHost is the element-wise maximum over the ranks of a few host values:
// through MPI when the job has it (no wait for the GPU), else through the
// GPU (float32: exact for the flags and counts it carries).
func (n *NCCL) MaxHost(x []float64) error {
	if n.mpi != nil {
		return n.mpi.AllReduceF64(x, true)
	}
	if len(x) > n.scratch.Len() {
		return fmt.Errorf("MaxHost: %d values, at most %d", len(x), n.scratch.Len())
	}
	h := n.host[:0]
	for _, v := range x {
		h = append(h, float32(v))
	}
	n.host = h
	if err := n.b.UploadF32(n.scratch, 0, h); err != nil {
		return err
	}
	err := n.nat.WithContext(func() error {
		return ncclAllReduce(n.comm, n.nat.StreamHandle(), n.nat.Pointer(n.scratch), len(h), ncclMax)
	})
	if err != nil {
		return err
	}
	if err := n.b.DownloadF32(n.scratch, 0, h); err != nil {
		return err
	}
	for i, v := range h {
		x[i] = float64(v)
	}
	return nil
}

// Close destroys the communicator (before the backend is closed: NCCL
// frees its buffers in the backend's context). It waits for the work
// queued on the stream.
func (n *NCCL) Close() error {
	if n.comm == 0 {
		return nil
	}
	close(n.stop)
	n.watching.Wait() // no poll of a destroyed communicator
	err := n.nat.WithContext(func() error {
		if err := n.b.Sync(); err != nil {
			ncclAbort(n.comm)
			return err
		}
		return ncclDestroy(n.comm)
	})
	n.comm = 0
	return err
}
