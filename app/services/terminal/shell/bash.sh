# Forecode's shell integration for bash, started as `bash --rcfile THIS -i`. It reads what
# bash would have read (/etc/bash.bashrc, then ~/.bashrc; with FORECODE_BASH_LOGIN set, a
# login shell's /etc/profile and ~/.bash_profile, ~/.bash_login or ~/.profile), then marks
# the prompt and each command for the editor: OSC 133 A (prompt) / B (typing) / C (output) /
# D;exit, and VS Code's OSC 633 E (the command line) and P;Cwd= (the folder), escaped as VS
# Code does.
if [ -z "${__forecode_loaded-}" ]; then
__forecode_loaded=1
# Every mark ends with this session's nonce, kept in an unexported variable: a program's
# output (a file cat'ed, test output) cannot forge a command for the editor.
__forecode_nonce=${FORECODE_NONCE-}
unset FORECODE_NONCE
if [ -n "${FORECODE_BASH_LOGIN-}" ]; then  # a login shell's files (macOS terminals start one)
  unset FORECODE_BASH_LOGIN
  [ -r /etc/profile ] && . /etc/profile
  if [ -r "$HOME/.bash_profile" ]; then . "$HOME/.bash_profile"
  elif [ -r "$HOME/.bash_login" ]; then . "$HOME/.bash_login"
  elif [ -r "$HOME/.profile" ]; then . "$HOME/.profile"
  fi
else
  [ -r /etc/bash.bashrc ] && . /etc/bash.bashrc
  [ -r "$HOME/.bashrc" ] && . "$HOME/.bashrc"
fi

__forecode_escape() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//;/\\x3b}
  v=${v//$'\n'/\\x0a}
  v=${v//$'\r'/\\x0d}
  v=${v//$'\e'/\\x1b}
  v=${v//$'\a'/\\x07}
  __forecode_escaped=$v
}

# PS0 runs this in a subshell after a line is read, before it runs: the line, then C. The line
# is history's newest entry when history took it (its number grew), else the editor uses the
# text typed after B.
__forecode_preexec() {
  local entry number
  entry=$(HISTTIMEFORMAT= builtin history 1)
  number=${entry%%[^ 0-9]*}
  number=${number// /}
  if [ -n "$number" ] && [ "$number" != "${__forecode_histno-}" ]; then
    entry=${entry#*[0-9] }
    entry=${entry#"${entry%%[! ]*}"}
    __forecode_escape "$entry"
    builtin printf '\e]633;E;%s;%s\a' "$__forecode_escaped" "$__forecode_nonce"
  fi
  builtin printf '\e]133;C;%s\a' "$__forecode_nonce"
}

__forecode_status() { return "$1"; }

__forecode_precmd() {
  local status=$? entry command
  builtin printf '\e]133;D;%s;%s\a' "$status" "$__forecode_nonce"
  __forecode_escape "$PWD"
  builtin printf '\e]633;P;Cwd=%s;%s\a' "$__forecode_escaped" "$__forecode_nonce"
  entry=$(HISTTIMEFORMAT= builtin history 1)
  __forecode_histno=${entry%%[^ 0-9]*}
  __forecode_histno=${__forecode_histno// /}
  for command in "${__forecode_user_prompt_command[@]}"; do
    __forecode_status "$status"
    eval "$command"
  done
  if [[ "$PS1" != *'133;B'* ]]; then  # the user's prompt command may set PS1 anew
    PS1='\[\e]133;A;'"$__forecode_nonce"'\a\]'"$PS1"'\[\e]133;B;'"$__forecode_nonce"'\a\]'
  fi
  __forecode_status "$status"
}

__forecode_user_prompt_command=("${PROMPT_COMMAND[@]}")
PROMPT_COMMAND=__forecode_precmd
PS0='$(__forecode_preexec)'"${PS0-}"
fi
