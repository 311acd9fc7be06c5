# Forecode's shell integration for zsh: the terminal starts zsh with ZDOTDIR here and the
# user's own ZDOTDIR (else HOME) in FORECODE_USER_ZDOTDIR; each file reads the user's own.
__forecode_user_zdotdir=${FORECODE_USER_ZDOTDIR:-$HOME}
# every mark ends with this session's nonce, kept unexported: output cannot forge a command
__forecode_nonce=${FORECODE_NONCE-}
unset FORECODE_NONCE FORECODE_USER_ZDOTDIR
[[ -r "$__forecode_user_zdotdir/.zshenv" ]] && ZDOTDIR=$__forecode_user_zdotdir source "$__forecode_user_zdotdir/.zshenv"
