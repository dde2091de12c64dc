package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// runCompletion prints the completion script for a shell. The scripts are
// made from the command definitions, and complete account names by asking
// `oauth2mail __accounts` (the config file's names; no keyring, no network).
func runCompletion(e *env, fs *pflag.FlagSet) error {
	if fs.NArg() != 1 {
		return usagef("completion: want bash, zsh or fish, e.g. oauth2mail completion bash")
	}
	spec := completionSpec()
	switch fs.Arg(0) {
	case "bash":
		return writeBash(e.stdout, spec)
	case "zsh":
		return writeZsh(e.stdout, spec)
	case "fish":
		return writeFish(e.stdout, spec)
	}
	return usagef("completion: %q is not bash, zsh or fish", fs.Arg(0))
}

// runAccounts prints the config's account names, one a line: what the
// completion scripts offer for ACCOUNT. It fails quietly.
func runAccounts(e *env, fs *pflag.FlagSet) error {
	f, err := e.load()
	if err != nil {
		return nil
	}
	for _, n := range f.Names() {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

// compCommand is what a completion script knows of a command.
type compCommand struct {
	name, summary string
	account       bool     // the first argument is an account
	operands      []string // the argument after the account, or the first
	flags         []compFlag
}

type compFlag struct {
	name, short, help string
	value             bool // takes a value
	file              bool // the value is a file
}

func completionSpec() []compCommand {
	var spec []compCommand
	for _, name := range order {
		cmd := commands()[name]
		c := compCommand{name: name, summary: docs[name].summary, account: cmd.account, operands: docs[name].operands}
		fs, _ := (&env{}).flagSet(name, cmd)
		fs.VisitAll(func(f *pflag.Flag) {
			arg := flagArg(f)
			c.flags = append(c.flags, compFlag{
				name: f.Name, short: f.Shorthand, help: firstClause(flagText(f)),
				value: arg != "",
				file:  arg == "FILE" || arg == "PATH",
			})
		})
		spec = append(spec, c)
	}
	return spec
}

// firstClause shortens a flag's help for the shells that show it.
func firstClause(s string) string {
	if i := strings.IndexAny(s, "(;"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func names(spec []compCommand) string {
	var n []string
	for _, c := range spec {
		n = append(n, c.name)
	}
	return strings.Join(n, " ")
}

// valueFlags are the options of any command that take a value, so the
// scripts can skip their values when counting arguments.
func valueFlags(spec []compCommand, file bool) string {
	var v []string
	for _, c := range spec {
		for _, f := range c.flags {
			if f.value && (!file || f.file) && !slices.Contains(v, "--"+f.name) {
				v = append(v, "--"+f.name)
			}
		}
	}
	return strings.Join(v, " ")
}

func writeBash(w io.Writer, spec []compCommand) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# bash completion for oauth2mail: oauth2mail completion bash > ~/.local/share/bash-completion/completions/oauth2mail
_oauth2mail() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd= npos=0 i w
	local -a conf=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--config) conf=(--config "${COMP_WORDS[i+1]}"); ((i++)); continue ;;
		%s) ((i++)); continue ;;
		-*) continue ;;
		esac
		if [[ -z $cmd ]]; then cmd=$w; else ((npos++)); fi
	done
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "%s --help --version" -- "$cur"))
		return
	fi
	case $prev in
	%s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	%s) return ;;
	esac
	local flags= operands= account=
	case $cmd in
`, casePattern(valueFlags(spec, false)), names(spec), casePattern(valueFlags(spec, true)), casePattern(valueFlags(spec, false)))
	for _, c := range spec {
		var flags []string
		for _, f := range c.flags {
			flags = append(flags, "--"+f.name)
			if f.short != "" {
				flags = append(flags, "-"+f.short)
			}
		}
		fmt.Fprintf(&b, "\t%s) flags=%q operands=%q account=%v ;;\n", c.name, strings.Join(flags, " "), strings.Join(c.operands, " "), c.account)
	}
	b.WriteString(`	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif [[ $account == true && $npos == 0 ]]; then
		COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __accounts "${conf[@]}" 2>/dev/null)" -- "$cur"))
	elif [[ ( $account == true && $npos == 1 ) || ( $account == false && $npos == 0 ) ]]; then
		COMPREPLY=($(compgen -W "$operands" -- "$cur"))
	fi
}
complete -F _oauth2mail oauth2mail
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// casePattern turns "--a --b" into a bash or zsh case pattern "--a|--b".
func casePattern(s string) string { return strings.ReplaceAll(s, " ", "|") }

func writeZsh(w io.Writer, spec []compCommand) error {
	var b strings.Builder
	b.WriteString(`#compdef oauth2mail
# zsh completion for oauth2mail: oauth2mail completion zsh > "${fpath[1]}/_oauth2mail"
_oauth2mail() {
	local -a conf cmds
	local cmd= npos=0 i w
	for ((i = 2; i < CURRENT; i++)); do
		w=${words[i]}
		case $w in
		--config) conf=(--config "${words[i+1]}"); ((i++)); continue ;;
`)
	fmt.Fprintf(&b, "\t\t%s) ((i++)); continue ;;\n", casePattern(valueFlags(spec, false)))
	b.WriteString(`		-*) continue ;;
		esac
		if [[ -z $cmd ]]; then cmd=$w; else ((npos++)); fi
	done
	if [[ -z $cmd ]]; then
		cmds=(
`)
	for _, c := range spec {
		fmt.Fprintf(&b, "\t\t\t%s\n", zshQuote(c.name+":"+c.summary))
	}
	b.WriteString(`		)
		_describe -t commands 'oauth2mail command' cmds
		return
	fi
`)
	fmt.Fprintf(&b, "\tcase ${words[CURRENT-1]} in\n\t%s) _files; return ;;\n\t%s) return ;;\n\tesac\n",
		casePattern(valueFlags(spec, true)), casePattern(valueFlags(spec, false)))
	b.WriteString("\tlocal -a flags operands\n\tlocal account=false\n\tcase $cmd in\n")
	for _, c := range spec {
		var flags []string
		for _, f := range c.flags {
			flags = append(flags, zshQuote("--"+f.name+":"+f.help))
		}
		var ops []string
		for _, o := range c.operands {
			ops = append(ops, zshQuote(o))
		}
		fmt.Fprintf(&b, "\t%s) flags=(%s); operands=(%s); account=%v ;;\n", c.name, strings.Join(flags, " "), strings.Join(ops, " "), c.account)
	}
	b.WriteString(`	esac
	if [[ $PREFIX == -* ]]; then
		_describe -t options 'option' flags
	elif [[ $account == true && $npos == 0 ]]; then
		local -a accounts
		accounts=(${(f)"$(${words[1]} __accounts $conf 2>/dev/null)"})
		compadd -a accounts
	elif [[ ( $account == true && $npos == 1 ) || ( $account == false && $npos == 0 ) ]]; then
		compadd -a operands
	fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_oauth2mail "$@"
else
	compdef _oauth2mail oauth2mail
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote quotes s for zsh (and fish) in single quotes.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func writeFish(w io.Writer, spec []compCommand) error {
	var b strings.Builder
	b.WriteString(`# fish completion for oauth2mail: oauth2mail completion fish > ~/.config/fish/completions/oauth2mail.fish
function __oauth2mail_args
	# The words after the command, without options and their values.
	set -l words (commandline -opc)
	set -l skip 0
	for w in $words[2..-1]
		if test $skip = 1
			set skip 0
			continue
		end
		switch $w
`)
	fmt.Fprintf(&b, "\t\t\tcase %s\n\t\t\t\tset skip 1\n", valueFlags(spec, false))
	b.WriteString(`			case '-*'
			case '*'
				echo $w
		end
	end
end
function __oauth2mail_npos
	set -l n (count (__oauth2mail_args))
	echo (math $n - 1)
end
function __oauth2mail_accounts
	set -l words (commandline -opc)
	set -l conf
	set -l i (contains -i -- --config $words)
	and set conf --config $words[(math $i + 1)]
	$words[1] __accounts $conf 2>/dev/null
end
complete -c oauth2mail -f
`)
	for _, c := range spec {
		fmt.Fprintf(&b, "complete -c oauth2mail -n '__fish_use_subcommand' -a %s -d %s\n", c.name, zshQuote(c.summary))
	}
	for _, c := range spec {
		cond := "__fish_seen_subcommand_from " + c.name
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c oauth2mail -n %s -l %s", zshQuote(cond), f.name)
			if f.short != "" {
				line += " -s " + f.short
			}
			switch {
			case f.file:
				line += " -r -F"
			case f.value:
				line += " -r"
			}
			fmt.Fprintf(&b, "%s -d %s\n", line, zshQuote(f.help))
		}
		first, second := "0", "1"
		if c.account {
			fmt.Fprintf(&b, "complete -c oauth2mail -n %s -a '(__oauth2mail_accounts)'\n", zshQuote(cond+"; and test (__oauth2mail_npos) = "+first))
		} else {
			second = first
		}
		if len(c.operands) > 0 {
			fmt.Fprintf(&b, "complete -c oauth2mail -n %s -a %s\n", zshQuote(cond+"; and test (__oauth2mail_npos) = "+second), zshQuote(strings.Join(c.operands, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
