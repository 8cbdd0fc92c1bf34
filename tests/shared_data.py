"""Where the real reference material lives: ``../shared/data`` beside the clone (as in CI)."""

import re
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IJW = SHARED_DATA / "istandaarden" / "ijw3.2"
IWMO = SHARED_DATA / "istandaarden" / "iwmo3.2"
VROEGSIGNALERING = SHARED_DATA / "vroegsignalering"


def as_iwmo(jw_message: bytes, number: str, code: str) -> bytes:
    """The same message in iWmo: namespaces and berichtcode (the structures are shared)."""
    text = jw_message.decode()
    text = text.replace(
        "http://www.istandaarden.nl/ijw/3_2/basisschema/schema",
        "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema",
    )
    text = text.replace(
        f"http://www.istandaarden.nl/ijw/3_2/jw{number}/schema",
        f"http://www.istandaarden.nl/iwmo/3_2/wmo{number}/schema",
    )
    text = re.sub(r"<(/?)jw(\d+):", r"<\1wmo\2:", text).replace("xmlns:jw", "xmlns:wmo")
    text = re.sub(r"<(/?)ijw:", r"<\1iwmo:", text).replace("xmlns:ijw", "xmlns:iwmo")
    text = text.replace("Categorie>55<", "Categorie>02<").replace("Code>55A1", "Code>02A0")
    return re.sub(r"BerichtCode>\d+<", f"BerichtCode>{code}<", text).encode()
