// Shell completion scripts generated from Pilot's own command tree, so they
// never drift from the commands that exist.
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** Space-joined subcommand path ('' = the program). */
  path: string;
  subcommands: string[];
  options: string[];
}

function walk(cmd: Command, prefix: string[] = []): Node[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  const options = [...cmd.options.map((o) => o.long).filter((l): l is string => Boolean(l)), '--help'];
  return [{ path: prefix.join(' '), subcommands: subs.map((c) => c.name()), options }, ...subs.flatMap((c) => walk(c, [...prefix, c.name()]))];
}

function bash(name: string, nodes: Node[]): string {
  const cases = nodes.map((n) => `    "${n.path}") subs="${n.subcommands.join(' ')}"; opts="${n.options.join(' ')}" ;;`).join('\n');
  return `# ${name} completion for bash: source <(${name} completion bash)
_${name}_words() {
  case "$1" in
${cases}
    *) subs=""; opts="" ;;
  esac
}
_${name}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i subs opts
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    _${name}_words "$path"
    case " $subs " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  _${name}_words "$path"
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -W "$subs" -- "$cur")); fi
}
complete -F _${name} ${name}
`;
}

function fish(name: string, nodes: Node[]): string {
  const lines = nodes.flatMap((n) => [
    ...(n.subcommands.length ? [`complete -c ${name} -n '__${name}_path_is "${n.path}"' -a '${n.subcommands.join(' ')}'`] : []),
    ...n.options.map((o) => `complete -c ${name} -n '__${name}_path_is "${n.path}"' -l '${o.slice(2)}'`),
  ]);
  const table = nodes.map((n) => `    case '${n.path}'\n      echo '${n.subcommands.join(' ')}'`).join('\n');
  return `# ${name} completion for fish: ${name} completion fish | source
function __${name}_subs
  switch $argv[1]
${table}
  end
end
function __${name}_path_is
  set -l path ''
  for w in (commandline -opc)[2..-1]
    if contains -- $w (string split ' ' (__${name}_subs $path))
      set path (string trim -- "$path $w")
    end
  end
  test "$path" = "$argv[1]"
end
complete -c ${name} -f
${lines.join('\n')}
`;
}

/** A completion script for `shell`, built from the command tree of `program`. */
export function completionScript(program: Command, shell: Shell): string {
  const name = program.name();
  const nodes = walk(program);
  if (shell === 'bash') return bash(name, nodes);
  if (shell === 'fish') return fish(name, nodes);
  // zsh runs the bash function through its bash-completion compatibility layer.
  return `#compdef ${name}
# ${name} completion for zsh: source <(${name} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(name, nodes)}`;
}
