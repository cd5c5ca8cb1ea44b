package model

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// TestMain: with TRAINER_SAVE_LOOP set, the test binary becomes a child that
// saves checkpoints to that path in a loop until it is killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("TRAINER_SAVE_LOOP"); path != "" {
		saveLoop(path)
		return
	}
	os.Exit(m.Run())
}

const loopSpec = "flatten,dense512,dense512,dense10" // ~1.8M parameters: 7 MB files

func saveLoop(path string) {
	b, _ := cpu.New(device.Options{Threads: 1})
	net, err := Plan(loopSpec, Shape{C: 3, H: 32, W: 32})
	if err != nil {
		os.Exit(2)
	}
	net.Build(b, 1, 1)
	for i := 0; ; i++ {
		p := net.InitParams(uint64(i))
		net.SetParams(p)
		if err := SaveCheckpoint(path, net, nil, map[string]string{"i": "x"}); err != nil {
			os.Exit(3)
		}
	}
}

// TestKillDuringSave kills (SIGKILL) a process that is writing checkpoints
// over and over, at varied moments, and checks every time that the
// checkpoint on disk is whole and loads.
func TestKillDuringSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	for i := 0; i < 8; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAINER_SAVE_LOOP="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(path); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(10+17*i) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		ck, err := LoadCheckpoint(path)
		if err != nil {
			t.Fatalf("after kill %d the checkpoint does not load: %v", i+1, err)
		}
		net, _ := Plan(loopSpec, Shape{C: 3, H: 32, W: 32})
		if _, err := ck.Flat(net); err != nil {
			t.Fatalf("after kill %d: %v", i+1, err)
		}
	}
}

// TestCorruptCheckpoint: a flipped byte anywhere in the data or a truncated
// file is refused with a clear message.
func TestCorruptCheckpoint(t *testing.T) {
	b, _ := cpu.New(device.Options{Threads: 1})
	defer b.Close()
	net, _ := Plan("conv4k3,flatten,dense3", Shape{C: 3, H: 6, W: 6})
	net.Build(b, 2, 1)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := SaveCheckpoint(path, net, nil, nil); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	if _, err := LoadCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(good) - 1, len(good) - 40, len(good) / 2} {
		bad := append([]byte(nil), good...)
		bad[at] ^= 0x10
		os.WriteFile(path, bad, 0o644)
		if _, err := LoadCheckpoint(path); err == nil {
			t.Fatalf("a flipped bit at byte %d of %d went unnoticed", at, len(good))
		}
	}
	for _, n := range []int{0, 5, 12, len(good) - 1} {
		os.WriteFile(path, good[:n], 0o644)
		_, err := LoadCheckpoint(path)
		if err == nil {
			t.Fatalf("a checkpoint truncated to %d bytes loaded", n)
		}
		t.Logf("truncated to %d bytes: %v", n, err)
	}
}

// TestStaleTempsRemoved: a temporary file left by a writer killed long ago is
// removed by the next save; a fresh one (a writer at work) is left alone.
func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	old := filepath.Join(dir, ".m.safetensors.tmp123")
	young := filepath.Join(dir, ".m.safetensors.tmp456")
	os.WriteFile(old, []byte("partial"), 0o644)
	os.WriteFile(young, []byte("partial"), 0o644)
	long := time.Now().Add(-time.Hour)
	os.Chtimes(old, long, long)
	if err := WriteFileAtomic(path, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("an hour-old temporary file was not removed")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("a fresh temporary file was removed")
	}
}
