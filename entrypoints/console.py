"""The `session-events` console script.

It routes the Claude Code client's commands (`hook`, `flush`, `hooks`) straight to their light
module, and everything else to the full command line (`entrypoints.cli`). Importing
`entrypoints.cli` costs about 20 ms of logging, dataclasses and the service's modules, and
Claude Code runs `session-events hook` on every tool call and waits for it."""

from __future__ import annotations

import sys

from entrypoints import claude_code_cli


def main() -> int:
    arguments = sys.argv[1:]
    if arguments[:1] and arguments[0] in claude_code_cli.COMMANDS:
        return claude_code_cli.main(arguments)
    from entrypoints.cli import main as full_main

    return full_main(arguments)


if __name__ == "__main__":
    sys.exit(main())
