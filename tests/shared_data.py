"""Where the real reference material lives: ``../shared/data`` beside the clone (as in CI).

Also what every file in ``connectors/samples/`` must give (:data:`SAMPLE_EXPECTED`): one
table for the unit test (tests/unit/test_samples.py, offline) and the integration test
(tests/integration/test_intake_paths.py, every intake path into Kafka). Every CSV and JSON
sample has a record that must be dead-lettered. An XML file is one iJw/iWmo message,
accepted or dead-lettered whole: the XML samples are one per message type and standard,
and the dead-lettered one is ``iwmo.wmo315.xml`` (its BSN has the XSD's nine digits but
fails the elfproef).
"""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IJW = SHARED_DATA / "istandaarden" / "ijw3.2"
IWMO = SHARED_DATA / "istandaarden" / "iwmo3.2"
VROEGSIGNALERING = SHARED_DATA / "vroegsignalering"
SAMPLES = Path(__file__).resolve().parents[1] / "connectors" / "samples"
ELFPROEF = "BSN fails the elfproef or is not 8-9 digits"

# sample file → (source, event types, dead-letter reasons (prefixes)), both sorted
SAMPLE_EXPECTED: dict[str, tuple[str, list[str], list[str]]] = {
    "ijw.jw301.xml": ("ijw", ["ToewijzingSnapshot"], []),
    "ijw.jw305.xml": ("ijw", ["ProvisionStarted"] * 2, []),
    "ijw.jw307.xml": ("ijw", ["ProvisionStopped"] * 2, []),
    "ijw.jw315.xml": ("ijw", ["ProvisionRequested"] * 2, []),
    "iwmo.wmo301.xml": ("iwmo", ["ToewijzingSnapshot"], []),
    "iwmo.wmo305.xml": ("iwmo", ["ProvisionStarted"] * 2, []),
    "iwmo.wmo307.xml": ("iwmo", ["ProvisionStopped"] * 2, []),
    "iwmo.wmo315.xml": ("iwmo", [], [ELFPROEF]),
    "vroegsignalering.ddas.csv": (
        "vroegsignalering",
        ["ArrearsSignal"] * 2,
        ["field occurred_at is not an ISO date or date-time"],
    ),
    "vroegsignalering.ddas.json": (
        "vroegsignalering",
        ["ArrearsSignal"] * 2,
        ["field creditor_type must be one of Energie, Huur,"],
    ),
    "income.csv": (
        "income",
        ["BenefitChanged"] * 2,
        ["field change must be one of granted, suspended, ended, sanction"],
    ),
    "income.json": ("income", ["BenefitChanged"] * 2, [ELFPROEF]),
    "schuldhulp.csv": (
        "schuldhulp",
        ["DebtHelpChanged"] * 2,
        ["field change must be one of intake, started, ended"],
    ),
    "schuldhulp.json": (
        "schuldhulp",
        ["DebtHelpChanged"] * 2,
        ["BSN is missing; this source must provide one"],
    ),
    "population.brp.csv": (
        "population",
        ["PersonDeceased", "PersonRegistered", "PersonRegistered"],
        [ELFPROEF],
    ),
    "population.haalcentraal.json": (
        "population",
        ["PersonRegistered"] * 2,
        ["field occurred_at is missing"],
    ),
    "population.haalcentraal.csv": ("population", ["PersonRegistered"] * 2, [ELFPROEF]),
    "teams.jsonl": ("teams", ["CaseOpened", "ConsentChanged", "CoordinatorAssigned"], [ELFPROEF]),
    "teams.zgw.csv": ("teams", ["CaseOpened"], ["unknown kind"]),
}
