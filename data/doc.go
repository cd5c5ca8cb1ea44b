// Package data reads the CIFAR-10 dataset in its binary layout (folder or
// archive) and fetches it on first use; it also reads MNIST and image
// folders.
//
// # Format
//
// The binary CIFAR-10 distribution ("cifar-10-binary.tar.gz") unpacks to a
// folder cifar-10-batches-bin holding data_batch_1.bin .. data_batch_5.bin
// (training data), test_batch.bin and batches.meta.txt (the ten class names,
// one per line). Each .bin file is a plain sequence of 3,073-byte records:
//
//	1 byte     label, 0..9
//	1024 bytes red channel, 32x32, row-major
//	1024 bytes green channel
//	1024 bytes blue channel
//
// There is no header. The official files hold 10,000 records each, but this
// package accepts any whole, non-zero number of records per file (the split
// used by this project holds 8,000 per training file). A [Dataset] keeps the
// pixels as uint8 exactly as in the file: image i is
// Images[i*3072 : (i+1)*3072], channel-major (CHW). Files are read in chunks
// straight into one allocation sized from the files' lengths, so loading the
// full training set (50,000 images) costs about 150 MiB and no second copy.
//
// # Archive
//
// [LoadCIFAR10] also takes the archive itself, cifar-10-binary.tar.gz as
// downloaded (or its .tar), and reads it in one streaming pass: nothing is
// extracted, so there is no copy to clean up or to leave half-written, and
// the archive is only read. Entries are checked as [ExtractTarGz] checks
// them (no "..", no absolute names, no links), the six .bin files must sit
// in one folder once each, the gzip checksum is verified, and the archives
// of the other versions (Python, MATLAB, CIFAR-100) are named as such.
//
// # Download
//
// [EnsureCIFAR10] returns the path of a ready cifar-10-batches-bin folder in a
// cache folder (by default os.UserCacheDir()/trainer), downloading it from
// [CIFAR10URL] if needed. It guarantees:
//
//   - The archive is written to a temporary "*.partial" file in the cache
//     folder and hashed while it downloads; it is used only if its SHA-256 is
//     [CIFAR10SHA256] (its MD5, as published on the CIFAR-10 page, is
//     c32a1d4ab5d03f1284b67883e8d87530). On a mismatch the file is deleted.
//   - The archive is unpacked into a temporary folder inside the cache folder,
//     and the cifar-10-batches-bin folder is then renamed into place in one
//     atomic step. An interrupted run therefore never leaves a folder that
//     looks complete. If another process put a complete folder in place
//     meanwhile, that one is kept and ours discarded.
//   - Cancelling the context (Ctrl-C) stops the download or extraction and
//     removes the temporary file and folder.
//   - On failure the error names the URL and says how to get the data by
//     hand: download the archive, "tar xzf" it, and use
//     path/to/cifar-10-batches-bin as the dataset folder (a
//     *LocationError, whose fix a front end words with its own flag).
//
// # Extraction
//
// [ExtractTarGz] (used by EnsureCIFAR10, and by tests and CI to unpack
// sample archives) accepts only regular files and directories whose names
// are relative paths with no ".." component. It rejects absolute paths,
// symbolic and hard links, device nodes and FIFOs; it writes through an
// [os.Root] so nothing can land outside the destination even if the
// destination already contains symbolic links; it never overwrites existing
// files; and it caps the total unpacked size (1 GiB) and the number of
// entries to defeat archive bombs. Files are created 0644 and folders 0755
// whatever the archive says.
package data
