package cli

import trainrun "github.com/trainer-go/trainer/run"

// dataFlagError maps an error of package data about a value to the flag of
// ds that set it (see run.DataError).
func dataFlagError(err error, ds dataSpec) error {
	return trainrun.DataError(err, trainrun.Dataset{Kind: ds.kind, Dir: ds.dir, ValDir: ds.valDir, ValSplit: ds.valSplit, ImageSize: ds.size})
}
