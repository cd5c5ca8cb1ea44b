package dist

import (
	"fmt"
	"strings"
	"testing"
)

func TestCommID(t *testing.T) {
	torch := Launch{Launcher: LauncherTorchrun, Rank: 1, Size: 2, MasterAddr: "node3", MasterPort: "29500", Vars: "RANK, WORLD_SIZE"}
	for _, c := range []struct {
		l       Launch
		env     map[string]string
		want    string
		wantErr string
	}{
		{torch, nil, "node3:29501", ""}, // not MASTER_PORT itself: torchrun's store listens there
		{torch, map[string]string{"NCCL_COMM_ID": "10.0.0.1:7000"}, "10.0.0.1:7000", ""},
		{torch, map[string]string{"NCCL_COMM_ID": "10.0.0.1"}, "", "host:port"},
		{Launch{Launcher: LauncherTorchrun, Size: 2, MasterAddr: "a", MasterPort: "x"}, nil, "", "MASTER_PORT"},
		{Launch{Launcher: LauncherSlurm, Rank: 0, Size: 4, Vars: "SLURM_PROCID, SLURM_NTASKS"}, nil, "", "set NCCL_COMM_ID"},
		{Launch{Launcher: LauncherSlurm, Rank: 0, Size: 4}, map[string]string{"NCCL_COMM_ID": "n1:29600"}, "n1:29600", ""},
	} {
		got, err := CommID(c.l, lookupOf(c.env))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%+v %v: error %v, want one with %q", c.l, c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v %v: %q, %v; want %q", c.l, c.env, got, err, c.want)
		}
	}
}

func TestGPUIndex(t *testing.T) {
	for local := range 16 {
		for visible := 1; visible <= 8; visible++ {
			g := GPUIndex(local, visible)
			if g < 0 || g >= visible || (local < visible && g != local) {
				t.Fatalf("local rank %d, %d GPUs: GPU %d", local, visible, g)
			}
		}
	}
}

func TestNCCLVersionString(t *testing.T) {
	// NCCL_VERSION(X,Y,Z): X*1000+Y*100+Z before 2.9, X*10000+Y*100+Z since.
	for _, c := range []struct{ major, minor, patch int }{{2, 7, 8}, {2, 8, 4}, {2, 10, 3}, {2, 21, 5}, {2, 30, 1}} {
		code := c.major*1000 + c.minor*100 + c.patch
		if c.minor >= 9 {
			code = c.major*10000 + c.minor*100 + c.patch
		}
		want := fmt.Sprintf("%d.%d.%d", c.major, c.minor, c.patch)
		if got := NCCLVersionString(code); got != want {
			t.Errorf("%d: %s, want %s", code, got, want)
		}
	}
}
