package cli

import (
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"
)

// bashCompletion asks the binary itself for candidates (urfave/cli's
// --generate-bash-completion), so it follows new commands and flags.
const bashCompletion = `# trainer bash completion: source <(trainer completion bash)
_trainer_complete() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == -* ]]; then
    words=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F _trainer_complete trainer
`

const zshCompletion = `#compdef trainer
# trainer zsh completion: source <(trainer completion zsh)
_trainer() {
  local -a opts
  opts=("${(@f)$(${words[1]} ${words[@]:1:$CURRENT-2} --generate-bash-completion 2>/dev/null)}")
  _describe 'values' opts
  _files
}
compdef _trainer trainer
`

func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "completion",
		Usage:       "print a shell completion script (bash, zsh or fish)",
		ArgsUsage:   "bash|zsh|fish",
		Description: "Example:\n   source <(trainer completion bash)       # add to ~/.bashrc to keep it",
		Action: func(c *ucli.Context) error {
			var s string
			switch c.Args().First() {
			case "bash":
				s = bashCompletion
			case "zsh":
				s = zshCompletion
			case "fish":
				var err error
				// A fresh tree: the running app's help command makes
				// urfave/cli's fish generator recurse without end.
				fish := App()
				fish.HideHelpCommand = true
				if s, err = fish.ToFishCompletion(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("completion %q: name a shell: bash, zsh or fish", c.Args().First())
			}
			_, err := io.WriteString(stdout, s)
			return err
		},
	}
}
