"""Launcher used by bench/ras.py: ``twistd`` (arguments passed through), plus

* ``BENCH_LIFETIME=S``: the reactor stops by itself after S seconds, so a
  benchmark that dies never leaves a server behind;
* ``BENCH_UDP_READ=BYTES``: Twisted's UDP ports read at most BYTES per
  reactor turn (``udp.Port.maxThroughput``, 256 KiB by default), to compare
  read sizes without touching the program;
* ``BENCH_PROFILE_DIR=DIR``: cProfile (timing CPU time) is off until
  SIGRTMIN+3 turns it on; SIGRTMIN+4 turns it off and writes
  ``DIR/<name>.prof`` and ``DIR/<name>.gc.json`` (the garbage collector's
  passes per generation and their wall time while it was on), where
  ``<name>`` is read from ``DIR/next``; a name already written gets ``-2``,
  ``-3``... (so a benchmark profiles only the phases it wants).

Library code is untouched: this only wraps ``twisted.scripts.twistd.run``.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import signal
import sys
import time


def _install_profiler(directory: str) -> None:
    state: dict = {}
    collections: dict[int, list[float]] = {}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            state["gc_start"] = time.perf_counter()
        elif "gc_start" in state:
            took = time.perf_counter() - state.pop("gc_start")
            entry = collections.setdefault(info["generation"], [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += took
            entry[2] = max(entry[2], took)

    def start(signum, frame) -> None:
        collections.clear()
        if on_gc not in gc.callbacks:
            gc.callbacks.append(on_gc)
        profile = cProfile.Profile(time.process_time)   # CPU time, not wall time
        state["profile"] = profile
        profile.enable()

    def stop(signum, frame) -> None:
        profile = state.pop("profile", None)
        if profile is None:
            return
        profile.disable()
        try:
            with open(os.path.join(directory, "next")) as f:
                name = f.read().strip() or "profile"
        except OSError:
            name = "profile"
        base, k = os.path.join(directory, name), 1
        while os.path.exists(base + ".prof"):
            k += 1
            base = os.path.join(directory, f"{name}-{k}")
        with open(base + ".gc.json", "w") as f:
            json.dump({"collections": {str(g): {"count": c, "seconds": s, "max": m}
                                       for g, (c, s, m) in sorted(collections.items())},
                       "objects": len(gc.get_objects()), "counts": gc.get_count()}, f)
        profile.dump_stats(base + ".prof.tmp")
        os.replace(base + ".prof.tmp", base + ".prof")

    signal.signal(signal.SIGRTMIN + 3, start)
    signal.signal(signal.SIGRTMIN + 4, stop)


def main() -> None:
    directory = os.environ.get("BENCH_PROFILE_DIR")
    if directory:
        _install_profiler(directory)
    udp_read = int(os.environ.get("BENCH_UDP_READ", "0") or 0)
    if udp_read > 0:
        from twisted.internet import udp

        udp.Port.maxThroughput = udp_read
    lifetime = float(os.environ.get("BENCH_LIFETIME", "0") or 0)
    if lifetime > 0:
        from twisted.internet import reactor  # the default reactor, as twistd would install

        reactor.callLater(lifetime, reactor.stop)
    from twisted.scripts.twistd import run

    sys.argv[0] = "twistd"
    run()


if __name__ == "__main__":
    main()
