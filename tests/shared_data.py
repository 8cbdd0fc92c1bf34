"""Where the real reference material lives: ``../shared/data`` beside the clone (as in CI)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IJW = SHARED_DATA / "istandaarden" / "ijw3.2"
IWMO = SHARED_DATA / "istandaarden" / "iwmo3.2"
VROEGSIGNALERING = SHARED_DATA / "vroegsignalering"
