# Forecode's shell integration for zsh: the user's own .zshrc first, then the marks for the
# editor: OSC 133 A (prompt) / B (typing) / C (output) / D;exit, and VS Code's OSC 633 E (the
# command line) and P;Cwd= (the folder), escaped as VS Code does. ZDOTDIR is the user's again
# after this file, so their .zlogin and anything that reads ZDOTDIR later find their own.
__forecode_integration_dir=$ZDOTDIR
ZDOTDIR=$__forecode_user_zdotdir
[[ -r "$ZDOTDIR/.zshrc" ]] && source "$ZDOTDIR/.zshrc"

__forecode_escape() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//;/\\x3b}
  v=${v//$'\n'/\\x0a}
  v=${v//$'\r'/\\x0d}
  v=${v//$'\e'/\\x1b}
  v=${v//$'\a'/\\x07}
  REPLY=$v
}

__forecode_ran=0
__forecode_precmd() {
  local st=$?
  if (( __forecode_ran )); then
    builtin printf '\e]133;D;%s;%s\a' "$st" "$__forecode_nonce"
  else
    builtin printf '\e]133;D;;%s\a' "$__forecode_nonce"
  fi
  __forecode_ran=0
  __forecode_escape "$PWD"
  builtin printf '\e]633;P;Cwd=%s;%s\a' "$REPLY" "$__forecode_nonce"
  if (( __forecode_prompt_sp )); then  # zsh's own PROMPT_SP, after D (see below)
    builtin print -nP -- "${PROMPT_EOL_MARK-%B%S%#%s%b}"
    builtin printf '%*s\r \r' $(( COLUMNS - 1 )) ''
  fi
  if [[ "$PS1" != *'133;B'* ]]; then  # a theme may set PS1 anew in its own precmd
    PS1=$'%{\e]133;A;'"$__forecode_nonce"$'\a%}'"$PS1"$'%{\e]133;B;'"$__forecode_nonce"$'\a%}'
  fi
}

__forecode_preexec() {
  __forecode_ran=1
  __forecode_escape "$1"
  builtin printf '\e]633;E;%s;%s\a\e]133;C;%s\a' "$REPLY" "$__forecode_nonce" "$__forecode_nonce"
}

# PROMPT_SP (the mark after output without a final newline, and the padding that hides it)
# is printed before any precmd hook: it would end up in the command's output, so it is done
# by the hook above, after D, the same way.
__forecode_prompt_sp=0
if [[ -o prompt_sp ]]; then
  __forecode_prompt_sp=1
  unsetopt prompt_sp
fi
# first in both lists: a theme's precmd output is the prompt's, not the last command's
precmd_functions=(__forecode_precmd ${precmd_functions[@]})
preexec_functions=(${preexec_functions[@]} __forecode_preexec)
