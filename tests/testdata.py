"""Where the tests' recorded data lives: ``tests/data/`` (see its README.md)."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
VECTORS = DATA / "vectors"
OOH323C_VECTORS = VECTORS / "ooh323c"
H323PLUS_VECTORS = VECTORS / "h323plus-gnugk"
GNUGK_TRANSCRIPTS = DATA / "gnugk-transcripts"
