"""The Claude Code client: hook payloads mapped to events, a local spool, and a background sender.

Everything the hook command touches (`mapping`, `spool`, `config`, `problem_log`, `sender_process`)
imports the standard library only: Claude Code waits for the hook on every tool call, so it must
not pay for the web framework, the event store or the database driver."""
