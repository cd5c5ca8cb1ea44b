package dist

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func lookupOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestFromLookupEachLauncher sets each launcher's variables to random
// values and reads them back.
func TestFromLookupEachLauncher(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range schemes {
		for range 20 {
			size := 1 + rng.IntN(64)
			rank, local := rng.IntN(size), rng.IntN(8)
			env := map[string]string{s.rank: strconv.Itoa(rank), s.size: strconv.Itoa(size), s.local: strconv.Itoa(local)}
			if s.launcher == LauncherTorchrun {
				env["MASTER_ADDR"], env["MASTER_PORT"] = "node7", "29500"
			}
			l, err := FromLookup(lookupOf(env))
			if err != nil {
				t.Fatalf("%s %v: %v", s.launcher, env, err)
			}
			if l.Launcher != s.launcher || l.Rank != rank || l.Size != size || l.LocalRank != local {
				t.Fatalf("%v read as %+v", env, l)
			}
			if l.Distributed() != (size > 1) || l.Primary() != (rank == 0) {
				t.Fatalf("%+v: Distributed %v Primary %v", l, l.Distributed(), l.Primary())
			}
			if s.launcher == LauncherTorchrun && (l.MasterAddr != "node7" || l.MasterPort != "29500") {
				t.Fatalf("torchrun rendezvous not read: %+v", l)
			}
		}
	}
}

// TestFromLookupPrecedence: a launcher started inside another's job sees
// the outer one's variables too; its own win.
func TestFromLookupPrecedence(t *testing.T) {
	slurm := map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_LOCALID": "0"}
	for _, inner := range schemes[:3] {
		env := map[string]string{inner.rank: "1", inner.size: "2"}
		for k, v := range slurm {
			env[k] = v
		}
		l, err := FromLookup(lookupOf(env))
		if err != nil || l.Launcher != inner.launcher || l.Rank != 1 || l.Size != 2 {
			t.Fatalf("%s inside Slurm: %+v, %v", inner.launcher, l, err)
		}
		if l.LocalRank != 1 {
			t.Fatalf("%s without a local rank variable: local rank %d, want the rank", inner.launcher, l.LocalRank)
		}
	}
}

func TestFromLookupNone(t *testing.T) {
	l, err := FromLookup(lookupOf(map[string]string{"MASTER_ADDR": "x", "LOCAL_RANK": "3"}))
	if err != nil || l.Launcher != LauncherNone || l.Size != 1 || l.Rank != 0 || l.Distributed() || !l.Primary() {
		t.Fatalf("no launcher: %+v, %v", l, err)
	}
	if !strings.Contains(l.String(), "single process") {
		t.Fatalf("String: %q", l.String())
	}
}

// TestFromLookupBad: every inconsistent environment is an error naming the
// variable.
func TestFromLookupBad(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"RANK": "0"}, "WORLD_SIZE"},
		{map[string]string{"RANK": "x", "WORLD_SIZE": "2"}, "RANK"},
		{map[string]string{"RANK": "-1", "WORLD_SIZE": "2"}, "RANK"},
		{map[string]string{"RANK": "2", "WORLD_SIZE": "2"}, "WORLD_SIZE=2"},
		{map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "0"}, "OMPI_COMM_WORLD_SIZE"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "a"}, "SLURM_LOCALID"},
		{map[string]string{"PMI_RANK": "3", "PMI_SIZE": "2"}, "PMI_RANK=3"},
	} {
		_, err := FromLookup(lookupOf(c.env))
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.name)
		}
	}
}
