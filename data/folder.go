package data

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/trainer-go/trainer/data/image"
	"github.com/trainer-go/trainer/internal/pool"
)

// FolderOptions configures LoadFolder.
type FolderOptions struct {
	// Size, if not 0, resizes every image to Size x Size (see package
	// data/image: antialiased bilinear, as torchvision's Resize). With 0
	// images keep their size, and all must share one.
	Size int

	// Classes, if set, fixes the class list and order (label i is
	// Classes[i]), for example to load a validation folder with the labels
	// of the training data. Every class folder must then be in the list;
	// listed classes without a folder are allowed. Default: the sorted names
	// of the class folders.
	Classes []string

	// Pool decodes the images, one per worker at a time: normally the
	// process's pool, shared with the CPU backend. nil: a temporary pool of
	// runtime.GOMAXPROCS(0) workers, closed before LoadFolder returns.
	Pool *pool.Pool
}

// Limits of LoadFolder, variables so tests can lower them. The limits of a
// source image (16384 px per side, 64 Mpx) are data/image's.
var (
	maxFolderBytes  = int64(32) << 30 // bytes of the loaded dataset
	imageExtensions = []string{".png", ".jpg", ".jpeg"}
)

// folderLayout says what LoadFolder expects.
const folderLayout = "an image folder (one subfolder per class, each with .png, .jpg or .jpeg files, directly or in subfolders)"

// folderImage is one image file to load.
type folderImage struct {
	path  string
	label int32
}

// LoadFolder reads an image-folder dataset: root/<class>/<image>, where the
// class names are the sorted names of root's subfolders (or o.Classes) and
// an image's label is the index of its class. A class's images are the
// files named *.png, *.jpg or *.jpeg (any case: .PNG, .Jpeg) in its class
// folder and in its subfolders, down to [MaxFolderDepth] levels (links to
// folders are followed, except back to a folder above). Everything else is
// skipped and listed in the result's Skipped, with the reason: hidden and
// system names (starting with ".", __MACOSX, Thumbs.db, desktop.ini,
// @eaDir) at both levels, files directly in root, files with other
// extensions, and image files that cannot be read or decoded. A class
// folder with no image, or none that decodes, is an error.
//
// Images are decoded by package data/image (PNG or JPEG, whatever the
// extension says), converted to RGB (grey images to three equal channels;
// alpha is dropped, as PIL's convert("RGB") does), resized if o.Size is set,
// and stored as uint8, channel-major (C=3). Decoding runs on o.Pool's
// workers, but the order is fixed (by label, then by path within a class,
// subfolders in place) so the result does not depend on the worker count.
//
// Each image's size is read from its header and the image skipped if over
// 16384 px per side or 64 Mpx before it is decoded. Without o.Size, every
// image must have the size of the first readable one: a different size is
// an error, not a skip, since it asks for o.Size. Errors name the folder
// or file at fault. Errors about the folder or the size are
// *LocationError.
func LoadFolder(root string, o FolderOptions) (*Dataset, error) {
	if err := checkFolderOptions(o); err != nil {
		return nil, err
	}
	files, classes, skipped, err := listFolder(root, o.Classes)
	if err != nil {
		return nil, err
	}

	h, w := o.Size, o.Size
	if o.Size == 0 {
		// All images must share the first readable one's size.
		if w, h, err = firstSize(files); err != nil {
			return nil, err
		}
	}
	n := len(files)
	isz := int64(3) * int64(h) * int64(w)
	if int64(n) > maxFolderBytes/isz {
		return nil, &LocationError{Root: root, Path: root, Setting: SettingSize, Want: "resize them smaller",
			Problem: fmt.Sprintf("%d images of 3x%dx%d would need %.1f GiB in memory, more than the %d GiB allowed", n, h, w, float64(n)*float64(isz)/(1<<30), maxFolderBytes>>30)}
	}
	d := &Dataset{
		Images:  make([]uint8, int64(n)*isz),
		Labels:  make([]int32, n),
		N:       n,
		C:       3,
		H:       h,
		W:       w,
		Classes: classes,
	}
	for i, f := range files {
		d.Labels[i] = f.label
	}
	bad, err := decodeAll(root, files, d, o)
	if err != nil {
		return nil, err
	}
	if err := dropBad(root, files, bad, d); err != nil {
		return nil, err
	}
	for i, reason := range bad {
		if reason != "" {
			skipped = append(skipped, SkippedFile{Path: files[i].path, Reason: reason, Kind: SkipUnreadable})
		}
	}
	d.Skipped = skipped
	return d, nil
}

// firstSize is the width and height of the first of files whose header
// reads. If none does, the error is the first file's.
func firstSize(files []folderImage) (w, h int, err error) {
	dec := image.NewDecoder()
	var first error
	for _, f := range files {
		w, h, err := dec.Config(f.path)
		if err == nil {
			return w, h, nil
		}
		var ie *image.Error
		if !errors.As(err, &ie) {
			return 0, 0, err
		}
		if first == nil {
			first = err
		}
	}
	return 0, 0, fmt.Errorf("no image could be read; the first: %w", first)
}

// dropBad removes from d the images whose entry in bad is not "" (they
// could not be decoded), keeping the order. A class left with no image is
// an error naming its folder.
func dropBad(root string, files []folderImage, bad []string, d *Dataset) error {
	isz := d.ImageSize()
	kept := make([]int, len(d.Classes))
	firstBad := make([]int, len(d.Classes))
	for i := range firstBad {
		firstBad[i] = -1
	}
	at := 0
	for i, f := range files {
		if bad[i] != "" {
			if firstBad[f.label] < 0 {
				firstBad[f.label] = i
			}
			continue
		}
		kept[f.label]++
		if at != i {
			copy(d.Images[at*isz:(at+1)*isz], d.Images[i*isz:(i+1)*isz])
			d.Labels[at] = d.Labels[i]
		}
		at++
	}
	for label, i := range firstBad {
		if i >= 0 && kept[label] == 0 {
			return &LocationError{Root: root, Path: filepath.Join(root, d.Classes[label]),
				Problem: fmt.Sprintf("class folder has no image that can be read (the first, %s: %s); fix or remove them", files[i].path, bad[i])}
		}
	}
	d.N = at
	d.Images = d.Images[: at*isz : at*isz]
	d.Labels = d.Labels[:at:at]
	return nil
}

// FolderLayout says what an image folder is, for errors.
const FolderLayout = folderLayout

// FolderListing is what listing an image folder tells without decoding an
// image.
type FolderListing struct {
	Classes []string      // the class names, as LoadFolder labels them
	Images  int           // image files (by name: some may not decode)
	Skipped []SkippedFile // files skipped by their name or place
	first   string        // the first image file in load order
}

// ListFolder lists an image folder as LoadFolder would load it with the
// class list classes (nil: the class folders), with the same checks and
// errors, but decodes nothing: it is cheap, so a caller can check the
// class count and the dataset's size first.
func ListFolder(root string, classes []string) (*FolderListing, error) {
	if err := checkFolderOptions(FolderOptions{Classes: classes}); err != nil {
		return nil, err
	}
	files, names, skipped, err := listFolder(root, classes)
	if err != nil {
		return nil, err
	}
	return &FolderListing{Classes: names, Images: len(files), Skipped: skipped, first: files[0].path}, nil
}

// FirstImageSize is the width and height of the first image, read from its
// header: the size of every image when they are not resized.
func (l *FolderListing) FirstImageSize() (w, h int, err error) {
	return image.NewDecoder().Config(l.first)
}

// checkFolderOptions checks the values of o.
func checkFolderOptions(o FolderOptions) error {
	if o.Size < 0 || o.Size > image.MaxSide() {
		return fmt.Errorf("data: image size %d must be 0 (keep) or 1..%d", o.Size, image.MaxSide())
	}
	for i, c := range o.Classes {
		if c == "" || strings.HasPrefix(c, ".") || strings.ContainsAny(c, `/\`) {
			return fmt.Errorf("data: class %d, %q, is not a folder name", i, c)
		}
		if slices.Contains(o.Classes[:i], c) {
			return fmt.Errorf("data: the class list names %q twice", c)
		}
	}
	return nil
}

// decodeJob decodes the images of a folder dataset into d, taking them in
// order from a shared counter. An image that cannot be read or decoded is
// marked in bad with the reason; any other failure stops further takes.
type decodeJob struct {
	root    string
	files   []folderImage
	d       *Dataset
	shape   image.Shape
	resize  bool
	bad     []string     // per image: why it was skipped, "" if decoded
	next    atomic.Int64 // next image to take
	failed  atomic.Bool
	errMu   sync.Mutex
	errAt   int
	firstEr error
}

func (j *decodeJob) Run(_, _ int) {
	dec := image.NewDecoder()
	n, isz := len(j.files), int64(j.shape.Size())
	for !j.failed.Load() {
		i := int(j.next.Add(1) - 1)
		if i >= n {
			return
		}
		err := dec.Load(j.files[i].path, j.d.Images[int64(i)*isz:int64(i+1)*isz], j.shape, j.resize)
		var ie *image.Error
		if errors.As(err, &ie) {
			j.bad[i] = ie.Msg // each worker writes its own indices
			continue
		}
		if err != nil {
			// Images are taken in order, so every image before i has been
			// taken and will finish: the smallest index that fails is the
			// first bad image, whatever the timing.
			j.errMu.Lock()
			if i < j.errAt {
				j.errAt, j.firstEr = i, j.sizeError(err)
			}
			j.errMu.Unlock()
			j.failed.Store(true)
		}
	}
}

// sizeError words an image of the wrong size as a LocationError.
func (j *decodeJob) sizeError(err error) error {
	var se *image.SizeError
	if !errors.As(err, &se) {
		return err
	}
	return &LocationError{Root: j.root, Path: se.Path, Setting: SettingSize, Want: "images must share one size unless resized",
		Problem: fmt.Sprintf("image is %dx%d but the first image is %dx%d", se.W, se.H, se.WantW, se.WantH), Err: err}
}

// decodeAll decodes files into d on o.Pool (or a temporary pool). It
// returns, per image, why it could not be read or decoded ("" if it was).
func decodeAll(root string, files []folderImage, d *Dataset, o FolderOptions) ([]string, error) {
	p := o.Pool
	if p == nil {
		p = pool.New(min(runtime.GOMAXPROCS(0), len(files)))
		defer p.Close()
	}
	j := &decodeJob{root: root, files: files, d: d, shape: image.Shape{C: 3, H: d.H, W: d.W}, resize: o.Size != 0,
		bad: make([]string, len(files)), errAt: len(files)}
	p.Do(j)
	return j.bad, j.firstEr
}

// SplitValidation splits d into a training and a validation set (holding
// out the fraction frac), stratified by label: for each class, a seeded
// shuffle picks which of its images go to validation. The validation set
// holds round(frac*N) images, spread over the classes in proportion to
// their sizes (largest remainders get the leftover ones, ties to the lower
// label, preferring classes that keep a training image). Both sets keep d's
// order and get their own copies of the pixels; the result depends only on
// d, frac and seed.
func SplitValidation(d *Dataset, frac float64, seed uint64) (train, val *Dataset, err error) {
	nVal, err := checkSplit(d, frac)
	if err != nil {
		return nil, nil, err
	}
	byClass, err := indicesByClass(d)
	if err != nil {
		return nil, nil, err
	}
	quota := splitQuotas(byClass, frac, nVal)

	// Pick each class's validation images with one seeded generator.
	inVal := make([]bool, d.N)
	rng := rand.New(rand.NewPCG(seed, 0x76616c2d73706c74)) // "val-splt"
	for c, idx := range byClass {
		perm := make([]int32, len(idx))
		Permutation(rng, perm)
		for _, p := range perm[:quota[c]] {
			inVal[idx[p]] = true
		}
	}
	isz := d.ImageSize()
	train = &Dataset{N: d.N - nVal, C: d.C, H: d.H, W: d.W, Classes: slices.Clone(d.Classes)}
	val = &Dataset{N: nVal, C: d.C, H: d.H, W: d.W, Classes: slices.Clone(d.Classes)}
	for _, s := range []*Dataset{train, val} {
		s.Images = make([]uint8, 0, s.N*isz)
		s.Labels = make([]int32, 0, s.N)
	}
	for i := range d.N {
		s := train
		if inVal[i] {
			s = val
		}
		s.Images = append(s.Images, d.Image(i)...)
		s.Labels = append(s.Labels, d.Labels[i])
	}
	return train, val, nil
}

// checkSplit checks SplitValidation's arguments and returns the size of the
// validation set.
func checkSplit(d *Dataset, frac float64) (int, error) {
	if d == nil {
		return 0, errors.New("data: SplitValidation of a nil dataset")
	}
	if !(frac > 0 && frac < 1) {
		return 0, fmt.Errorf("data: validation fraction %v must be between 0 and 1 (exclusive)", frac)
	}
	isz := d.ImageSize()
	if d.N < 0 || len(d.Labels) != d.N || len(d.Images) != d.N*isz {
		return 0, fmt.Errorf("data: SplitValidation: dataset has N=%d but %d labels and %d pixel bytes (want %d)", d.N, len(d.Labels), len(d.Images), d.N*isz)
	}
	nVal := int(math.Round(frac * float64(d.N)))
	if nVal == 0 || nVal == d.N {
		return 0, fmt.Errorf("data: a validation fraction of %v of %d images leaves %d for validation and %d for training; both need at least one", frac, d.N, nVal, d.N-nVal)
	}
	return nVal, nil
}

// indicesByClass groups d's image indices by label, checking the labels.
func indicesByClass(d *Dataset) ([][]int32, error) {
	numClasses := len(d.Classes)
	for i, l := range d.Labels {
		if l < 0 || (numClasses > 0 && int(l) >= numClasses) {
			return nil, fmt.Errorf("data: SplitValidation: image %d has label %d, outside 0..%d", i, l, numClasses-1)
		}
	}
	if numClasses == 0 {
		numClasses = int(slices.Max(d.Labels)) + 1
	}
	byClass := make([][]int32, numClasses)
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], int32(i))
	}
	return byClass, nil
}

// splitQuotas gives each class its number of validation images: floors of
// frac times its size, then the remaining ones of nVal to the largest
// fractional parts.
func splitQuotas(byClass [][]int32, frac float64, nVal int) []int {
	numClasses := len(byClass)
	quota := make([]int, numClasses)
	rem := make([]float64, numClasses)
	left := nVal
	for c, idx := range byClass {
		q := frac * float64(len(idx))
		quota[c] = int(q)
		rem[c] = q - float64(quota[c])
		left -= quota[c]
	}
	order := make([]int, numClasses)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	// First to classes that keep a training image, then to any.
	for _, keep := range []int{1, 0} {
		for _, c := range order {
			if left > 0 && rem[c] > 0 && quota[c]+keep < len(byClass[c]) {
				quota[c]++
				rem[c] = 0
				left--
			}
		}
	}
	return quota
}
