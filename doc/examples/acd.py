#!/usr/bin/env python3
"""A small automatic call distributor (ACD) for the gatekeeper's virtual queues.

It talks to the gatekeeper only through the status port, as GnuGk's ACD does:

- it watches registrations (``RCF``/``URQ`` lines and the ``r`` listing) to
  know which agents are logged in;
- each ``RouteRequest`` for a queued call is answered with ``RouteToAlias``
  to the first idle agent, in the order the agents were given;
- an agent is busy from the moment a call is sent to it until the call's
  ``CDR`` line; a call that finds no idle agent waits here until one is
  free (the gatekeeper's ``RequestTimeout`` still applies).

Standard library only. Usage::

    python3 acd.py --host 127.0.0.1 --port 7000 agent1 agent2 agent3

The gatekeeper needs the queue and the ``vqueue`` policy, e.g.::

    [RoutingPolicy]
    default=explicit,vqueue,internal
    [CTI::Agents]
    VirtualQueueAliases=support
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections import deque
from dataclasses import dataclass

TELNET_IAC = 0xFF


def aliases_of(field: str) -> set[str]:
    """``1001:dialedDigits=alice:h323_ID`` -> {'1001', 'alice'}."""
    return {part.rsplit(":", 1)[0] for part in field.split("=") if part}


@dataclass
class Waiting:
    endpoint_id: str
    call_reference: str
    call_id: str


class Distributor:
    """What the ACD knows and decides; fed one status line at a time."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = agents
        self.registered: dict[str, str] = {}     # agent alias -> endpoint id
        self.busy: set[str] = set()
        self.waiting: deque[Waiting] = deque()

    def idle_agent(self) -> str | None:
        for agent in self.agents:
            if agent in self.registered and agent not in self.busy:
                return agent
        return None

    def on_line(self, line: str) -> list[str]:
        """Commands to send in answer to one line from the gatekeeper."""
        fields = line.rstrip(";").split("|")
        kind = fields[0]
        if kind == "RCF" and len(fields) >= 5:
            for alias in aliases_of(fields[2]) & set(self.agents):
                self.registered[alias] = fields[4]
            return self.dispatch()
        if kind in ("URQ", "UCF") and len(fields) >= 3:
            gone = fields[2]
            for alias, endpoint_id in list(self.registered.items()):
                if endpoint_id == gone:
                    del self.registered[alias]
            return []
        if kind == "CDR" and len(fields) >= 11:
            # CDR|no|callid|duration|start|end|callerIP|callerEPID|calleeIP|calleeEPID|dest|src|gk
            for alias in aliases_of(fields[10]) | {
                    a for a, e in self.registered.items() if e == fields[9]}:
                self.busy.discard(alias)
            return self.dispatch()
        if kind == "RouteRequest" and len(fields) >= 4:
            call_id = fields[6] if len(fields) > 6 else ""
            self.waiting.append(Waiting(fields[2], fields[3], call_id))
            return self.dispatch()
        return []

    def dispatch(self) -> list[str]:
        commands = []
        while self.waiting:
            agent = self.idle_agent()
            if agent is None:
                break
            call = self.waiting.popleft()
            self.busy.add(agent)
            words = ["RouteToAlias", agent, call.endpoint_id, call.call_reference]
            if call.call_id:
                words.append(call.call_id)
            commands.append(" ".join(words))
        return commands


def lines(sock: socket.socket):
    """The status port's lines, without telnet negotiation bytes."""
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buffer += data
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            raw, buffer = buffer[:end], buffer[end + 1:]
            yield _strip_telnet(raw).decode("utf-8", "replace").strip("\r\n ")


def _strip_telnet(raw: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(raw):
        if raw[index] == TELNET_IAC:
            index += 3          # IAC verb option: negotiation, not text
            continue
        out.append(raw[index])
        index += 1
    return bytes(out)


def run(host: str, port: int, agents: list[str]) -> None:
    distributor = Distributor(agents)
    with socket.create_connection((host, port)) as sock:
        # Every event (registrations, CDRs, RouteRequests), then the current
        # registrations; the gatekeeper answers in order.
        sock.sendall(b"trace 2\r\nr\r\n")
        print(f"acd: connected to {host}:{port}, agents {', '.join(agents)}", flush=True)
        for line in lines(sock):
            for command in distributor.on_line(line):
                print(f"acd: {command}", flush=True)
                sock.sendall(command.encode() + b"\r\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("agents", nargs="+", help="agent aliases, in order of preference")
    options = parser.parse_args(argv)
    try:
        run(options.host, options.port, options.agents)
    except (ConnectionError, OSError) as error:
        print(f"acd: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
