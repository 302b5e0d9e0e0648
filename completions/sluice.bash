# bash completion for sluice(1).
# Pure bash (compgen and builtins only). Keep in step with cli/app.cpp:
# tests/e2e/docs_e2e_test.cpp checks every command and option of `sluice --help` against it.

_sluice() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    # `--opt=value`: readline splits it into `--opt`, `=`, `value`.
    if [[ $cur == "=" ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        cur=
    elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi

    local global_opts="--config --now --json --log-level -h --help"
    local commands="version report once plan run status history explain ack check init simulate replay override"
    local override_actions="pin freeze unfreeze bound tier clear list"
    # Options that take a value: the word after one is not a command or positional.
    local valued=" --config --now --log-level --format --since --until --out --top --threads --interval --pool --isp --policy --days --html --from --to --vmta --max-smtp-out --reason --floor --ceiling --source "
    local isps="gmail outlook yahoo gmx orange generic"

    local IFS=$'\n'
    case $prev in
        --config | --out | --html)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0
            ;;
        --format)
            COMPREPLY=($(compgen -W $'text\njson\nhtml' -- "$cur"))
            return 0
            ;;
        --policy)
            COMPREPLY=($(compgen -W $'sluice\nstatic\npmta-backoff\nkumo-step\naimd\noracle' -- "$cur"))
            return 0
            ;;
        --log-level)
            COMPREPLY=($(compgen -W $'trace\ndebug\ninfo\nwarn\nerror\ncritical\noff' -- "$cur"))
            return 0
            ;;
        --isp)
            COMPREPLY=($(compgen -W "${isps// /$'\n'}" -- "$cur"))
            return 0
            ;;
        --now | --since | --until | --top | --threads | --interval | --pool | --days | --from | --to | --vmta | --max-smtp-out | --reason | --floor | --ceiling | --source)
            # A free value: nothing sensible to offer.
            COMPREPLY=()
            return 0
            ;;
    esac

    # Find the command, the override action and how many positionals precede the cursor.
    local cmd= action= positionals=0 i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == "=" ]]; then
            ((i++))
            continue
        fi
        if [[ $word == -* ]]; then
            [[ $valued == *" $word "* && ${COMP_WORDS[i + 1]} != "=" ]] && ((i++))
            continue
        fi
        if [[ -z $cmd ]]; then
            cmd=$word
        elif [[ $cmd == override && -z $action ]]; then
            action=$word
        else
            ((positionals++))
        fi
    done

    local opts=
    case $cmd in
        report) opts="--format --since --until --out --top --threads" ;;
        once) opts="--dry-run" ;;
        run) opts="--dry-run --interval" ;;
        status) opts="--format --days --out" ;;
        history) opts="--pool --isp --since" ;;
        simulate) opts="--policy --days --html" ;;
        replay) opts="--from --to" ;;
        override)
            case $action in
                pin) opts="--vmta --max-smtp-out --until --reason" ;;
                freeze) opts="--vmta --all --until --reason" ;;
                unfreeze) opts="--vmta --all" ;;
                bound) opts="--vmta --floor --ceiling --until --reason" ;;
                tier) opts="--source" ;;
                clear) opts="--vmta" ;;
            esac
            ;;
    esac

    if [[ $cur == -* ]]; then
        local all="$global_opts $opts"
        COMPREPLY=($(compgen -W "${all// /$'\n'}" -- "$cur"))
        return 0
    fi

    local words=
    case $cmd in
        "") words=$commands ;;
        report | simulate)
            # Accounting files, or the scenario file.
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0
            ;;
        explain | ack)
            ((positionals == 1)) && words=$isps
            ;;
        override)
            if [[ -z $action ]]; then
                words=$override_actions
            elif [[ $action != list ]]; then
                ((positionals == 1)) && words=$isps
                [[ $action == tier ]] && ((positionals == 2)) && words="high medium low warming"
            fi
            ;;
    esac
    COMPREPLY=($(compgen -W "${words// /$'\n'}" -- "$cur"))
    return 0
}

complete -F _sluice sluice
