# bash completion for strata and system-migrate.
#
# Commands and options come from the programs' own --help, so the
# completion never lists an option the program does not have; migration
# ids come from the migrations dir (--dir, default ./migrations) and layer
# ids from the data dir (--data, default /data).

# The words of the "Commands:" section of a help text (lines indented by
# two spaces, a word, then spaces).
_strata_help_commands()
{
    "$@" --help 2>/dev/null | awk '
        /^Commands:/ { on = 1; next }
        on && /^[^ ]/ { on = 0 }
        on && /^  [a-z][a-z0-9-]*( |$)/ { print $1 }'
}

# Every long option a help text names.
_strata_help_options()
{
    "$@" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# The value of option $1 on the command line so far, or $2.
_strata_option_value()
{
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        "$1") echo "${COMP_WORDS[i + 1]}"; return ;;
        "$1"=*) echo "${COMP_WORDS[i]#*=}"; return ;;
        esac
    done
    echo "$2"
}

_strata_migration_ids()
{
    local dir d
    dir=$(_strata_option_value --dir ./migrations)
    for d in "$dir"/[0-9]*_*/; do
        [ -d "$d" ] && basename "$d"
    done
}

_strata_layer_ids()
{
    local data d
    data=$(_strata_option_value --data /data)
    for d in "$data"/system/layers/*/; do
        [ -d "$d" ] && basename "$d"
    done
}

# Completes the words after "migrate" (or of system-migrate): $1 is the
# index of the first word after it, the rest the program to ask.
_strata_migrate()
{
    local first=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    shift
    case $prev in
    --data | --base | --dir)
        COMPREPLY=($(compgen -d -- "$cur"))
        return ;;
    --to | --from)
        COMPREPLY=($(compgen -W "$(_strata_migration_ids) $(_strata_layer_ids)" -- "$cur"))
        return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_strata_help_options "$@")" -- "$cur"))
        return
    fi
    local i cmd=
    for ((i = first; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) case ${COMP_WORDS[i - 1]} in
            --data | --base | --dir | --to | --from | --timeout | --max-layers | --log-level) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
            esac ;;
        esac
    done
    case $cmd in
    "") COMPREPLY=($(compgen -W "$(_strata_help_commands "$@")" -- "$cur")) ;;
    diff | show) COMPREPLY=($(compgen -W "$(_strata_migration_ids) $(_strata_layer_ids)" -- "$cur")) ;;
    *) COMPREPLY=() ;;
    esac
}

_strata()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local prog=${COMP_WORDS[0]} i cmd= at=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; at=$i; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$(_strata_help_options "$prog")" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_strata_help_commands "$prog")" -- "$cur"))
        fi
        return
    fi
    case $cmd in
    migrate) _strata_migrate $((at + 1)) "$prog" migrate; return ;;
    help) COMPREPLY=($(compgen -W "$(_strata_help_commands "$prog")" -- "$cur")); return ;;
    esac
    case $prev in
    --data | --base | --state-dir | --chdir | --services | --vm-dir | --rootfs)
        COMPREPLY=($(compgen -d -- "$cur"))
        return ;;
    --table | --config | --plan | --jobs | --kernel | --token-file | --socket)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    esac
    if [[ $cur == -* ]]; then
        # Options of the command's verb when it has verbs (lab run, vm start).
        local verb=${COMP_WORDS[at + 1]}
        if [ $((at + 1)) -lt $COMP_CWORD ] && [[ $verb != -* ]] &&
            "$prog" "$cmd" "$verb" --help >/dev/null 2>&1; then
            COMPREPLY=($(compgen -W "$(_strata_help_options "$prog" "$cmd" "$verb")" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_strata_help_options "$prog" "$cmd")" -- "$cur"))
        fi
        return
    fi
    if [ $COMP_CWORD -eq $((at + 1)) ]; then
        local verbs
        verbs=$(_strata_help_commands "$prog" "$cmd")
        [ -z "$verbs" ] && verbs=$("$prog" "$cmd" --help 2>/dev/null |
            sed -n 's/^ *Usage: *[^ ]* [^ ]* \([a-z][a-z-]*\).*/\1/p; s/^ \{7,\}[^ ]* [^ ]* \([a-z][a-z-]*\) .*/\1/p')
        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}

_system_migrate()
{
    _strata_migrate 1 "${COMP_WORDS[0]}"
}

complete -F _strata strata
complete -F _system_migrate system-migrate
