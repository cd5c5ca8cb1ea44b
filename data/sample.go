package data

import (
	"fmt"
	"os"
	"path/filepath"
)

// SampleEnv names the environment variable SampleDir reads.
const SampleEnv = "TRAINER_CIFAR_SAMPLE"

// SampleDir unpacks the archive named by $TRAINER_CIFAR_SAMPLE (a .tar.gz holding
// cifar-10-batches-bin/) into a temp dir and returns the cifar-10-batches-bin path;
// when the variable is unset it returns "" and the reason, so tests can t.Skip(reason).
//
// tempDir should be a fresh folder such as t.TempDir(). A variable that is
// set but names a missing or bad archive is an error, not a skip, so a
// misconfigured CI run fails loudly. Typical use:
//
//	dir, skip, err := data.SampleDir(t.TempDir())
//	if err != nil {
//		t.Fatal(err)
//	}
//	if skip != "" {
//		t.Skip(skip)
//	}
//	train, test, err := data.LoadCIFAR10(dir)
func SampleDir(tempDir string) (dir string, skipReason string, err error) {
	archive := os.Getenv(SampleEnv)
	if archive == "" {
		return "", "$" + SampleEnv + " not set; point it at a .tar.gz holding " + BatchesFolder + "/ to run this test", nil
	}
	if err := ExtractTarGz(archive, tempDir); err != nil {
		return "", "", fmt.Errorf("$%s: %w", SampleEnv, err)
	}
	dir = filepath.Join(tempDir, BatchesFolder)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("$%s: %s has no %s/ folder", SampleEnv, archive, BatchesFolder)
	}
	return dir, "", nil
}
