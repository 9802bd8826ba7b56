# shellcheck shell=bash
# Run test programs that print TAP (GLib's --tap) and count their results.
# Sourced by check.sh and check-selftest.sh; needs $out (a directory).
#
# Each program runs in a process group of its own, under two time limits:
# the whole run, and each case (no case ended for that long). Whatever
# stops it (a limit, a crash, an exit status that is not 0, a plan left
# unfinished), the result names the case it was in.

passed=0 failed=0 skipped=0
failures=()

result() {              # result pass|fail|skip NAME [DETAIL]
    case $1 in
    pass) passed=$((passed + 1)) ;;
    fail) failed=$((failed + 1)); failures+=("$2${3:+ ($3)}") ;;
    skip) skipped=$((skipped + 1)) ;;
    esac
    printf '%-4s %s%s\n' "$1" "$2" "${3:+ ($3)}"
}

# The count line. check_done ends a script that got to its end; a script
# that stops before (set -e, die) gets it from the EXIT trap, with that
# stop counted as a failure.
print_counts() {
    echo
    if ((failed)); then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "$passed passed, $failed failed, $skipped skipped"
}
stopped_early() {
    local status=$?
    trap - EXIT
    result fail "${0##*/}" "stopped early with status $status, see above"
    print_counts
    exit 1
}
trap stopped_early EXIT
check_done() {
    trap - EXIT
    print_counts
    ((failed == 0))
}

# run_tap NAME [--limit S] [--case-limit S] [--must-pass FILE]
#         [--skip-ok REGEX] -- COMMAND...
#   Runs COMMAND (TAP on its stdout, into $out/NAME.tap; stderr into
#   $out/NAME.log) and counts each case. Fails the run, naming the case,
#   when it runs past --limit seconds (default 1800) or one case takes
#   more than --case-limit (default 600), when it exits with a status
#   other than 0 or by a signal, or ran fewer cases than it planned.
#   --must-pass FILE: the cases listed there (one per line) must run and
#   pass: a skip or an absence is a failure, unless the skip's reason
#   matches --skip-ok REGEX.
#   Writes $out/NAME.times: seconds each case took (to the second).
run_tap() {
    local name=$1 limit=1800 case_limit=600 must= skip_ok=
    shift
    while (($#)) && [[ $1 != -- ]]; do
        case $1 in
        --limit) limit=$2 ;;
        --case-limit) case_limit=$2 ;;
        --must-pass) must=$2 ;;
        --skip-ok) skip_ok=$2 ;;
        *) echo "run_tap: unknown option $1" >&2; return 2 ;;
        esac
        shift 2
    done
    shift
    local tap=$out/$name.tap log=$out/$name.log times=$out/$name.times
    local start=$SECONDS case_start=$SECONDS ended=0 now n pid status
    local stopped=

    : >"$times"
    set -m                  # a process group of its own, to stop it whole
    "$@" >"$tap" 2>"$log" </dev/null &
    pid=$!
    set +m
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        now=$SECONDS
        n=$(grep -cE '^(not )?ok ' "$tap" || true)
        if ((n > ended)); then
            echo "$((now - case_start)) $(grep -E '^(not )?ok ' "$tap" | tail -n 1)" >>"$times"
            ended=$n case_start=$now
        fi
        if ((now - start > limit)); then
            stopped="ran past its limit of $limit s"
        elif ((now - case_start > case_limit)); then
            stopped="took more than $case_limit s"
        fi
        if [[ -n $stopped ]]; then
            kill -TERM -- -"$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 1
            done
            kill -KILL -- -"$pid" 2>/dev/null || true
            break
        fi
    done
    status=0
    wait "$pid" 2>/dev/null || status=$?
    tap_count "$name" "$tap" "$log" "$status" "$stopped" "$must" "$skip_ok"
}

# The case a program was in when it stopped: the last one it announced
# ("# Running ..." or "# Start of ...") without a result line after it.
tap_current_case() {
    awk '/^# Running \//  { cur = $3; next }
         /^(not )?ok /    { cur = "" }
         END              { print cur }' "$1"
}

# tap_count NAME TAP LOG STATUS STOPPED MUST_PASS_FILE SKIP_OK_REGEX
tap_count() {
    local name=$1 tap=$2 log=$3 status=$4 stopped=$5 must=$6 skip_ok=$7
    local line case reason seen=0 plan= bad=0 current
    declare -A outcome=()

    while IFS= read -r line; do
        case $line in
        "ok "*"# SKIP"*)
            case=${line#ok * }; reason=${case#*# SKIP}; reason=${reason# }
            case=${case%% # SKIP*}
            outcome[$case]=skip
            if [[ -n $must ]] && grep -qxF "$case" "$must" &&
               ! [[ -n $skip_ok && $reason =~ $skip_ok ]]; then
                result fail "$name $case" "skipped, but must run here: $reason"
            else
                result skip "$name $case" "$reason"
            fi ;;
        "ok "*)
            case=${line#ok * }; outcome[$case]=pass
            result pass "$name $case" ;;
        "not ok "*)
            case=${line#not ok * }; outcome[$case]=fail; bad=1
            result fail "$name $case" ;;
        1..*) plan=${line#1..}; plan=${plan%% *}; continue ;;
        *) continue ;;
        esac
        seen=$((seen + 1))
    done < "$tap"

    current=$(tap_current_case "$tap")
    if [[ -n $stopped || $status -ne 0 || -z $plan || $seen -lt ${plan:-0} ]]; then
        local why
        if [[ -n $stopped ]]; then
            why=$stopped
        elif ((status > 128)); then
            why="killed by signal $(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"
        elif ((status)); then
            why="exit status $status"
        else
            why="no plan or an unfinished one"
        fi
        # A "not ok" already explains a status of 1 when nothing else went
        # wrong (GLib's -k runs the rest and exits 1).
        if ! [[ -z $stopped && $status -eq 1 && $bad -eq 1 && -n $plan &&
                $seen -ge $plan ]]; then
            tail -n 20 "$log"
            result fail "$name${current:+ $current}" \
                "$why; ran $seen of ${plan:-?} cases; see $log"
        fi
    fi

    if [[ -n $must ]]; then
        while IFS= read -r case; do
            [[ -z $case || -n ${outcome[$case]:-} ]] && continue
            result fail "$name $case" "did not run, but must run here"
        done < "$must"
    fi
}
