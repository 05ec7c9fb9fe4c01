"""``python -m gatekeeper.status.passwd USER``: a ``[GkStatus::Auth]`` password entry.

Reads the password twice from the terminal (or once from standard input when
it is not a terminal) and prints ``USER=PBKDF2:<salt>-<hex>`` to paste into
the configuration file.
"""

from __future__ import annotations

import getpass
import sys

from gatekeeper.status.auth import hash_password


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0] or "=" in args[0]:
        print("usage: python -m gatekeeper.status.passwd USER", file=sys.stderr)
        return 2
    user = args[0]
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {user}: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("An empty password is refused.", file=sys.stderr)
        return 1
    print(f"{user}={hash_password(password)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
