package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// explainModel is a small network with every layer kind explain meets on
// a real checkpoint: conv, BatchNorm (trained running statistics), relu,
// maxpool, a residual add, global average pooling and dense.
const explainModel = `{"name": "explain-test", "layers": [
	{"name": "conv1", "type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
	{"name": "bn1", "type": "batchnorm", "act": "relu"},
	{"name": "pool", "type": "maxpool", "kernel": 2},
	{"name": "conv2", "type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
	{"name": "bn2", "type": "batchnorm"},
	{"name": "res", "type": "add", "inputs": ["bn2", "pool"], "act": "relu"},
	{"name": "gap", "type": "globalavgpool"},
	{"name": "fc", "type": "dense", "units": 10}
]}`

// explainCheckpoint trains explainModel for two epochs of 200 random
// CIFAR-10 images with a weight average (--ema).
func explainCheckpoint(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testkit.WriteRandomCIFAR(t, filepath.Join(dir, "data"), 40)
	mf := filepath.Join(dir, "model.json")
	if err := os.WriteFile(mf, []byte(explainModel), 0o644); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(dir, "run", "model.safetensors")
	code, _, errOut := run(t, "train", "--device", "cpu", "--threads", "1", "--data-dir", filepath.Join(dir, "data"),
		"--model", mf, "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--ema", "0.9", "--out", ck, "-q")
	if code != 0 {
		t.Fatalf("training the test checkpoint failed (exit %d):\n%s", code, errOut)
	}
	return ck
}

type explainLine struct {
	File, PNG, Class, Layer string
	Index                   int
	P                       float64
	Top                     []prediction
}

func explainJSON(t *testing.T, args ...string) []explainLine {
	t.Helper()
	code, out, errOut := run(t, append([]string{"explain", "--device", "cpu", "--threads", "1", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("explain exit %d:\n%s", code, errOut)
	}
	var res []explainLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r explainLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("--json printed a line that is not JSON: %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	return res
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// Geometry of the PNG for a 32x32 model as the command documents it:
// panels of 160 px (32 scaled by 5) with 8 px margins, two caption lines
// above and three class lines below, 13 px each, and 4 px under the
// captions.
const (
	wantPanel = 160
	wantW     = 3*wantPanel + 4*8
	wantH     = 8 + 2*13 + 4 + wantPanel + 8 + 3*13 + 8
	panelY    = 8 + 2*13 + 4
)

// TestExplainPNGAndTop: each image gets its PNG with the documented size;
// the first panel is the input itself, the third the saliency map that
// model.Explain computes for the same image and class; the top classes
// agree with predict's, the explained class is the top one, the layer the
// last conv.
func TestExplainPNGAndTop(t *testing.T) {
	ck := explainCheckpoint(t)
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "maps", "new")
	src := noiseImage(32, 32, 11)
	a := writePNG(t, filepath.Join(dir, "a.png"), src)
	b := writeJPEG(t, filepath.Join(dir, "b.photo.jpg"), noiseImage(50, 41, 12))
	res := explainJSON(t, "--checkpoint", ck, "--out-dir", out, a, b)
	pred := predictJSON(t, ck, 3, a, b)
	if len(res) != 2 {
		t.Fatalf("%d JSON lines for 2 images", len(res))
	}
	for i, r := range res {
		wantPNG := filepath.Join(out, []string{"a", "b.photo"}[i]+".explain.png")
		if r.File != pred[i].File || r.PNG != wantPNG || r.Layer != "conv2" {
			t.Fatalf("line %d: file %q png %q layer %q; want %q, %q, conv2", i, r.File, r.PNG, r.Layer, pred[i].File, wantPNG)
		}
		if len(r.Top) != 3 || r.Index != r.Top[0].Index || r.Class != r.Top[0].Class || r.P != r.Top[0].P {
			t.Fatalf("%s: explained %s (%d, p %v), top %+v: not the most likely class", r.File, r.Class, r.Index, r.P, r.Top)
		}
		for k, p := range r.Top {
			q := pred[i].Top[k]
			if p.Index != q.Index || p.Class != q.Class || math.Abs(p.P-q.P) > 1e-6 {
				t.Fatalf("%s: explain's top classes %+v, predict's %+v", r.File, r.Top, pred[i].Top)
			}
		}
		if bnd := readPNG(t, r.PNG).Bounds(); bnd.Dx() != wantW || bnd.Dy() != wantH {
			t.Fatalf("%s is %dx%d, want %dx%d", r.PNG, bnd.Dx(), bnd.Dy(), wantW, wantH)
		}
	}
	img := readPNG(t, res[0].PNG)
	checkInputPanel(t, img, src)
	checkSaliencyPanel(t, img, ck, a, -1)
}

// checkInputPanel: the first panel shows src (32x32, not resized: its
// pixels are the model's input) scaled by 5, nearest neighbour.
func checkInputPanel(t *testing.T, img image.Image, src *image.NRGBA) {
	t.Helper()
	for y := range wantPanel {
		for x := range wantPanel {
			r, g, b, _ := img.At(8+x, panelY+y).RGBA()
			s := src.NRGBAAt(x/5, y/5)
			if uint8(r>>8) != s.R || uint8(g>>8) != s.G || uint8(b>>8) != s.B {
				t.Fatalf("input panel (%d,%d) = %d,%d,%d; the image's pixel (%d,%d) is %d,%d,%d", x, y, r>>8, g>>8, b>>8, x/5, y/5, s.R, s.G, s.B)
			}
		}
	}
}

// checkSaliencyPanel: the third panel is model.Explain's saliency map of
// the image (through the same checkpoint, with its weight average) for
// class, in grey.
func checkSaliencyPanel(t *testing.T, img image.Image, ck, file string, class int) {
	t.Helper()
	c, net, _, err := model.Open(ck)
	if err != nil {
		t.Fatal(err)
	}
	be, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := net.Build(be, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := net.SetParams(c.FlatEMA(net)); err != nil {
		t.Fatal(err)
	}
	_, x, _, err := loadInputs([]string{file}, net.Input)
	if err != nil {
		t.Fatal(err)
	}
	e, err := net.Explain(x, class, "")
	if err != nil {
		t.Fatal(err)
	}
	x0 := 3*8 + 2*wantPanel
	lit := 0
	for y := range wantPanel {
		for x := range wantPanel {
			r, _, _, _ := img.At(x0+x, panelY+y).RGBA()
			want := math.Round(255 * float64(e.Saliency[(y/5)*32+x/5]))
			if math.Abs(float64(r>>8)-want) > 1 {
				t.Fatalf("saliency panel (%d,%d) = %d, model.Explain's map gives %v", x, y, r>>8, want)
			}
			if r>>8 > 64 {
				lit++
			}
		}
	}
	if lit == 0 {
		t.Fatal("the saliency panel is dark everywhere")
	}
}

// TestExplainText: without --json, each image's block starts with exactly
// the lines predict prints for it, then names the PNG.
func TestExplainText(t *testing.T) {
	ck := explainCheckpoint(t)
	dir := t.TempDir()
	a := writePNG(t, filepath.Join(dir, "a.png"), noiseImage(40, 32, 21))
	code, out, errOut := run(t, "explain", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--out-dir", dir, a)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	code, pout, errOut := run(t, "predict", "--device", "cpu", "--threads", "1", "--checkpoint", ck, a)
	if code != 0 {
		t.Fatalf("predict exit %d:\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, pout) {
		t.Fatalf("explain printed\n%s\npredict printed\n%s", out, pout)
	}
	rest := strings.TrimPrefix(out, pout)
	if png := filepath.Join(dir, "a.explain.png"); !strings.Contains(rest, "on layer conv2: "+png) {
		t.Fatalf("the last line %q does not name the layer and %s", rest, png)
	}
}

// TestExplainClassAndLayer: --class by name and by index explain the same
// class (the same PNG, byte for byte), and another class or --layer gives
// another picture; --no-ema gives predict --no-ema's probabilities.
func TestExplainClassAndLayer(t *testing.T) {
	ck := explainCheckpoint(t)
	dir := t.TempDir()
	src := noiseImage(32, 32, 31)
	a := writePNG(t, filepath.Join(dir, "a.png"), src)
	top := explainJSON(t, "--checkpoint", ck, "--out-dir", filepath.Join(dir, "top"), a)[0]
	other := (top.Index + 1) % 10
	name := testClasses[other]
	byName := explainJSON(t, "--checkpoint", ck, "--out-dir", filepath.Join(dir, "name"), "--class", name, a)[0]
	byIndex := explainJSON(t, "--checkpoint", ck, "--out-dir", filepath.Join(dir, "index"), "--class", string(rune('0'+other)), a)[0]
	if byName.Index != other || byName.Class != name || byIndex.Index != other {
		t.Fatalf("--class %s explained %d (%s); --class %d explained %d", name, byName.Index, byName.Class, other, byIndex.Index)
	}
	if byName.P >= top.P || byName.Top[0] != top.Top[0] {
		t.Fatalf("class %s has p %v, above the top class's %v (or the top classes changed)", name, byName.P, top.P)
	}
	pn, pi, pt := readFile(t, byName.PNG), readFile(t, byIndex.PNG), readFile(t, top.PNG)
	if !bytes.Equal(pn, pi) {
		t.Fatal("--class by name and by index drew different pictures")
	}
	if bytes.Equal(pn, pt) {
		t.Fatal("another class drew the same picture")
	}
	checkSaliencyPanel(t, readPNG(t, byName.PNG), ck, a, other)
	layer := explainJSON(t, "--checkpoint", ck, "--out-dir", filepath.Join(dir, "layer"), "--layer", "bn1", a)[0]
	if layer.Layer != "bn1" || bytes.Equal(readFile(t, layer.PNG), pt) {
		t.Fatalf("--layer bn1 explained layer %q, or drew the default layer's picture", layer.Layer)
	}
	raw := explainJSON(t, "--checkpoint", ck, "--out-dir", filepath.Join(dir, "raw"), "--no-ema", a)[0]
	code, out, _ := run(t, "predict", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--no-ema", "--json", a)
	var pr predictLine
	if code != 0 || json.Unmarshal([]byte(out), &pr) != nil {
		t.Fatalf("predict --no-ema: exit %d, %q", code, out)
	}
	if raw.Top[0].Index != pr.Top[0].Index || math.Abs(raw.Top[0].P-pr.Top[0].P) > 1e-6 || raw.Top[0].P == top.Top[0].P {
		t.Fatalf("--no-ema: explain %+v, predict %+v, with the average %+v", raw.Top[0], pr.Top[0], top.Top[0])
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExplainErrors: bad flags, images and output folders fail with one
// line naming the flag, value or file, before anything is written; an
// input image is never overwritten.
func TestExplainErrors(t *testing.T) {
	ck := explainCheckpoint(t)
	dir := t.TempDir()
	good := writePNG(t, filepath.Join(dir, "good.png"), noiseImage(32, 32, 41))
	text := filepath.Join(dir, "text.png")
	os.WriteFile(text, []byte("this is not an image\n"), 0o644)
	// good.explain.png is an input; good.png's explanation would replace it.
	victim := writePNG(t, filepath.Join(dir, "good.explain.png"), noiseImage(32, 32, 42))
	before := readFile(t, victim)
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	twin := writeJPEG(t, filepath.Join(other, "good.jpg"), noiseImage(32, 32, 43))
	notDir := filepath.Join(dir, "plain-file")
	os.WriteFile(notDir, nil, 0o644)
	out := filepath.Join(dir, "out")
	ex := func(args ...string) []string {
		return append([]string{"explain", "--device", "cpu", "--threads", "1", "--checkpoint", ck}, args...)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown layer", ex("--out-dir", out, "--layer", "nope", good), []string{"--layer", `"nope"`, "conv1, conv2"}},
		{"flat layer", ex("--out-dir", out, "--layer", "gap", good), []string{"--layer", `"gap"`, "flat vector", "conv1, conv2"}},
		{"class index", ex("--out-dir", out, "--class", "10", good), []string{"--class 10", "0 to 9"}},
		{"class name", ex("--out-dir", out, "--class", "unicorn", good), []string{`--class "unicorn"`, "airplane, automobile", "truck"}},
		{"unreadable image", ex("--out-dir", out, text), []string{"text.png", "not a PNG or JPEG"}},
		{"missing image", ex("--out-dir", out, filepath.Join(dir, "nope.jpg")), []string{"nope.jpg", "not found"}},
		{"out-dir under a file", ex("--out-dir", filepath.Join(notDir, "sub"), good), []string{"--out-dir", "plain-file"}},
		{"overwrite input", ex("--out-dir", dir, good, victim), []string{"would overwrite the input image", victim}},
		{"same output", ex("--out-dir", out, good, twin), []string{good, twin, "--out-dir"}},
		{"no images", ex("--out-dir", out), []string{"at least one image"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, errOut := run(t, c.args...)
			if code != ExitError || stdout != "" {
				t.Fatalf("exit %d, want %d, stdout %q; stderr:\n%s", code, ExitError, stdout, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			msg := lines[len(lines)-1]
			if !strings.HasPrefix(msg, "trainer: error: ") {
				t.Fatalf("last stderr line %q is not an error line", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if !bytes.Equal(readFile(t, victim), before) {
		t.Fatal("the input image good.explain.png was changed")
	}
	if m, _ := filepath.Glob(filepath.Join(out, "*.png")); len(m) != 0 {
		t.Fatalf("failed runs wrote %v", m)
	}
	// One unreadable image among good ones is skipped: exit 3, the others
	// explained.
	code, stdout, errOut := run(t, ex("--out-dir", out, text, good)...)
	if code != ExitSkipped || !strings.Contains(errOut, "text.png") || !strings.Contains(stdout, good) {
		t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, ExitSkipped, stdout, errOut)
	}
	if _, err := os.Stat(filepath.Join(out, "good.explain.png")); err != nil {
		t.Fatal(err)
	}
}
