# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_quantum_watchdog_global_optspecs
    string join \n config= user v/verbose h/help V/version
end

function __fish_quantum_watchdog_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_quantum_watchdog_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_quantum_watchdog_using_subcommand
    set -l cmd (__fish_quantum_watchdog_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -s V -l version -d 'Print version'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "agent" -d 'Run the agent (under systemd as Type=notify)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "status" -d 'Show every watched unit, its consumer and the verdict. Exit 0 ok, 1 warning, 2 critical, 3 unknown'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "recover" -d 'One sweep of consumer recovery: hand off dead consumers\' entries, delete empty dead and zombie consumers'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "pause" -d 'Hold every action on units back (they are still judged and shown) until resumed or for a while. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "resume" -d 'Remove pauses. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "reset-budget" -d 'Let units that gave up restart again: earlier restarts no longer count against their restart budget. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "exec" -d 'Run a consumer under systemd\'s watchdog (Type=notify, WatchdogSec=): READY once its consumer is in its group, WATCHDOG pings while it is not hung, WATCHDOG=trigger when it is'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "history" -d 'Tell a unit\'s story from the journal: the agent\'s verdicts and actions, recovery sweeps, and systemd\'s starts and stops. Needs to read the journal (root, systemd-journal)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "check-config" -d 'Validate and print the effective merged configuration'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand agent" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand agent" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand agent" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand agent" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l json -d 'Stable JSON instead of a table'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l pipeline -d 'Show the flow through each [[pipeline]] and where it stops'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l fleet -d 'Show the hosts of the fleet: heartbeats, versions, vouched consumers, recovery leases'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l watch -d 'Redraw every interval until interrupted (a terminal view)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand status" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -l unit -d 'Only the bindings of this unit (repeatable), e.g. `--unit %n` in a drop-in' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -l dry-run -d 'Show what would be done; change nothing'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand recover" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -l for -d 'Resume by itself after this long (30m, 2h)' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -l reason -d 'Why, for the log and status' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -l all -d 'Every unit'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand pause" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand resume" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand resume" -l all -d 'Every pause, `--all` ones too'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand resume" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand resume" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand resume" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand reset-budget" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand reset-budget" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand reset-budget" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand reset-budget" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -l unit -d 'The unit (default: the one this process runs in)' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -l ready-timeout -d 'READY=1 at the latest this long after the start, consumer seen or not' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -l stop-timeout -d 'After a stop signal (SIGTERM, SIGINT) the child drains this long unwatched: the unit\'s TimeoutStopSec= (systemd honours WATCHDOG=trigger during a stop)' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand exec" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand history" -l since -d 'From when (journalctl\'s syntax: -1d, -2h, "2026-12-07 09:00", today)' -r
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand history" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand history" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand history" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand history" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand check-config" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand check-config" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand check-config" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand completions" -l config -d 'Read this one file instead of the layered configuration (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml)' -r -F
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand completions" -l user -d 'Talk to the calling user\'s systemd manager on the session bus, not the system manager'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand completions" -s v -l verbose -d 'More log output'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand completions" -s h -l help -d 'Print help'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "agent" -d 'Run the agent (under systemd as Type=notify)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "status" -d 'Show every watched unit, its consumer and the verdict. Exit 0 ok, 1 warning, 2 critical, 3 unknown'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "recover" -d 'One sweep of consumer recovery: hand off dead consumers\' entries, delete empty dead and zombie consumers'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "pause" -d 'Hold every action on units back (they are still judged and shown) until resumed or for a while. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "resume" -d 'Remove pauses. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "reset-budget" -d 'Let units that gave up restart again: earlier restarts no longer count against their restart budget. Exit 4 if the caller may not'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "exec" -d 'Run a consumer under systemd\'s watchdog (Type=notify, WatchdogSec=): READY once its consumer is in its group, WATCHDOG pings while it is not hung, WATCHDOG=trigger when it is'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "history" -d 'Tell a unit\'s story from the journal: the agent\'s verdicts and actions, recovery sweeps, and systemd\'s starts and stops. Needs to read the journal (root, systemd-journal)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "check-config" -d 'Validate and print the effective merged configuration'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish)'
complete -c quantum-watchdog -n "__fish_quantum_watchdog_using_subcommand help; and not __fish_seen_subcommand_from agent status recover pause resume reset-budget exec history check-config completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
