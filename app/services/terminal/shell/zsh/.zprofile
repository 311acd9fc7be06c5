# Forecode: the user's own .zprofile (a login shell).
[[ -r "$__forecode_user_zdotdir/.zprofile" ]] && ZDOTDIR=$__forecode_user_zdotdir source "$__forecode_user_zdotdir/.zprofile"
