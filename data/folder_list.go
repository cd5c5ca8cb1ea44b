package data

// Listing an image folder: which files are a class's images, and which
// are skipped and why.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaxFolderDepth is how many levels of subfolders below a class folder are
// searched for images: root/<class>/a/b/img.png is 2 levels down. Deeper
// folders are skipped and reported.
const MaxFolderDepth = 16

// SkipKind says why a file was skipped, in broad terms.
type SkipKind int

const (
	// SkipHidden: a hidden or system name (".DS_Store", "._x.jpg",
	// ".git/", "__MACOSX/", "Thumbs.db", "desktop.ini", "@eaDir/"),
	// expected in copied folders and not worth a warning.
	SkipHidden SkipKind = iota
	// SkipNotImage: not an image file by its name (another extension, no
	// extension, another image format), or not where images go (directly
	// in the root, too deep, a link loop, not a regular file).
	SkipNotImage
	// SkipUnreadable: named like an image but it cannot be read or
	// decoded (corrupt, truncated, another format, too large).
	SkipUnreadable
)

// SkippedFile is a file or folder under an image folder that was not
// loaded, and why.
type SkippedFile struct {
	Path   string // root joined with its path below the root
	Reason string // why, in words
	Kind   SkipKind
}

// otherImageFormats are extensions of image formats LoadFolder does not
// read, so their files are skipped with a hint to convert them.
var otherImageFormats = []string{".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".ppm", ".pgm", ".pbm", ".svg", ".ico", ".jxl", ".jp2"}

// systemNames are names (lower case) that tools leave in folders and that
// are skipped silently, like names starting with ".".
var systemNames = []string{"__macosx", "thumbs.db", "desktop.ini", "@eadir"}

// isHidden says whether a file or folder name is hidden or a system name.
func isHidden(name string) bool {
	return strings.HasPrefix(name, ".") || slices.Contains(systemNames, strings.ToLower(name))
}

// isImageName reports whether name is a visible file name with an image
// extension.
func isImageName(name string) bool {
	return !isHidden(name) && slices.Contains(imageExtensions, strings.ToLower(filepath.Ext(name)))
}

// notImageReason says why a visible file without an image extension is
// skipped.
func notImageReason(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	switch {
	case slices.Contains(otherImageFormats, ext):
		return fmt.Sprintf("a %s image, and only PNG and JPEG are read: convert it", ext)
	case ext == "":
		return "not an image: no .png, .jpg or .jpeg extension"
	}
	return fmt.Sprintf("not an image: %s, not .png, .jpg or .jpeg", ext)
}

// isArchiveName says whether a file name looks like an archive.
func isArchiveName(name string) bool {
	name = strings.ToLower(name)
	for _, ext := range []string{".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".7z", ".rar"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// lister lists one image folder.
type lister struct {
	root    string
	files   []folderImage
	skipped []SkippedFile
}

// skip records a skipped file.
func (l *lister) skip(path, reason string, kind SkipKind) {
	l.skipped = append(l.skipped, SkippedFile{Path: path, Reason: reason, Kind: kind})
}

// listFolder returns the image files under root in load order, the class
// names and the files skipped.
func listFolder(root string, fixed []string) ([]folderImage, []string, []SkippedFile, error) {
	l := &lister{root: root}
	found, err := l.classFolders()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, name := range found {
		if strings.ContainsAny(name, ",\n\r") {
			return nil, nil, nil, &LocationError{Root: root, Path: filepath.Join(root, name),
				Problem: fmt.Sprintf("class folder %q has a comma or line break in its name; class names are stored comma-separated in checkpoints: rename the folder", name)}
		}
	}
	classes := found
	if len(fixed) > 0 {
		classes = slices.Clone(fixed)
		for _, name := range found {
			if !slices.Contains(fixed, name) {
				return nil, nil, nil, &LocationError{Root: root, Path: filepath.Join(root, name),
					Problem: fmt.Sprintf("class folder %q is not one of the %d expected classes (%s); remove or rename it", name, len(fixed), strings.Join(fixed, ", "))}
			}
		}
	}
	for label, name := range classes {
		if len(fixed) > 0 && !slices.Contains(found, name) {
			continue
		}
		if err := l.class(name, int32(label)); err != nil {
			return nil, nil, nil, err
		}
	}
	return l.files, classes, l.skipped, nil
}

// classFolders returns the sorted names of the class folders in the root;
// files in the root are skipped.
func (l *lister) classFolders() ([]string, error) {
	root := l.root
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() {
		e := &LocationError{Root: root, Path: root, Problem: "folder not found", Want: folderLayout, Err: err}
		if err == nil {
			e.Problem = "is a file, not a folder"
			if isArchiveName(root) {
				e.Problem = "is an archive, and image folders are not read from archives: unpack it"
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			e.Problem, e.Want = "cannot open folder: "+errText(err), ""
		}
		return nil, e
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fileErr(root, "cannot list folder: "+errText(err), err)
	}
	var found []string // sorted: ReadDir sorts by name
	loose := 0
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if isHidden(e.Name()) {
			l.skip(p, "hidden or system name", SkipHidden)
			continue
		}
		fi, err := os.Stat(p) // follows links
		switch {
		case err != nil:
			l.skip(p, "cannot read: "+errText(err), SkipNotImage)
		case fi.IsDir():
			found = append(found, e.Name())
		default:
			if isImageName(e.Name()) {
				loose++
			}
			l.skip(p, "not in a class folder", SkipNotImage)
		}
	}
	if len(found) == 0 {
		e := &LocationError{Root: root, Path: root, Problem: "has no class folders", Want: folderLayout}
		if loose > 0 {
			e.Problem = fmt.Sprintf("has no class folders but %d images directly in it", loose)
		}
		return nil, e
	}
	return found, nil
}

// class appends the images of class folder root/name, at any depth up to
// MaxFolderDepth, to l.files.
func (l *lister) class(name string, label int32) error {
	dir := filepath.Join(l.root, name)
	var up []os.FileInfo
	for _, p := range []string{l.root, dir} {
		fi, err := os.Stat(p)
		if err != nil {
			return fileErr(p, "cannot open folder: "+errText(err), err)
		}
		up = append(up, fi)
	}
	before := len(l.files)
	if err := l.walk(dir, label, up); err != nil {
		return err
	}
	if len(l.files) == before {
		return &LocationError{Root: l.root, Path: dir, Problem: "class folder has no images (.png, .jpg or .jpeg, in it or its subfolders); add some or remove the folder"}
	}
	return nil
}

// walk appends the images in dir and its subfolders, depth first in name
// order; up holds the folders from the root down to dir, to stop at links
// that loop back (up[1] is the class folder).
func (l *lister) walk(dir string, label int32, up []os.FileInfo) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fileErr(dir, "cannot list folder: "+errText(err), err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if isHidden(e.Name()) {
			l.skip(p, "hidden or system name", SkipHidden)
			continue
		}
		if e.Type().IsRegular() {
			l.file(p, e.Name(), label)
			continue
		}
		fi, err := os.Stat(p) // follows links
		switch {
		case err != nil:
			l.skip(p, "cannot read: "+errText(err), SkipNotImage)
		case fi.Mode().IsRegular():
			l.file(p, e.Name(), label)
		case !fi.IsDir():
			l.skip(p, "not a regular file", SkipNotImage)
		case len(up)-2 >= MaxFolderDepth: // p would be a level deeper
			l.skip(p, fmt.Sprintf("folder more than %d levels below its class folder", MaxFolderDepth), SkipNotImage)
		case slices.ContainsFunc(up, func(a os.FileInfo) bool { return os.SameFile(a, fi) }):
			l.skip(p, "link to a folder above it (a loop)", SkipNotImage)
		default:
			if err := l.walk(p, label, append(up, fi)); err != nil {
				return err
			}
		}
	}
	return nil
}

// file takes the regular file p (named name) as an image or skips it.
func (l *lister) file(p, name string, label int32) {
	if isImageName(name) {
		l.files = append(l.files, folderImage{p, label})
		return
	}
	l.skip(p, notImageReason(name), SkipNotImage)
}
